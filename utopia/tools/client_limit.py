"""The plain client's limit on this broker: how fast confluent-kafka with msgspec reads and writes, no dataflow.

`make bench` sets each dataflow beside it. A dataflow reads its input and writes its outputs, and some
write dozens of outputs per input record (the suggestions): the time the plain client needs for both,
`Run.vs_client_limit`, is what a dataflow's own time is compared with, not the time to read alone.
"""

from __future__ import annotations

import time
import uuid
from itertools import cycle, islice
from typing import NamedTuple

import msgspec
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from utopia.config import Settings
from utopia.io import topics
from utopia.io.kafka_io import CLIENT_CONFIG, FETCH_CONFIG, PRODUCER_CONFIG, send
from utopia.models import (
    ArtistStreams,
    CustomersByTopArtist,
    CustomerStreamCount,
    EventAlert,
    EventStreamerAlert,
    GenreEventSuggestion,
    GlobalTotals,
    MustSeeVenue,
    NamedArtistStreams,
    Output,
    Stream,
    TicketResponse,
    TopArtists,
    TopCustomerArtists,
    TrendingArtists,
    ZipcodePopularEventAlert,
    ZipcodeTickets,
)

_TOP = [NamedArtistStreams(f"a-0000{n}", f"The Golden Echoes {n}", 1000 - n) for n in range(3)]
OUTPUT_SAMPLES: dict[type[Output], tuple[str | None, Output]] = {
    CustomerStreamCount: ("c-0012345", CustomerStreamCount("c-0012345", 42)),
    TopCustomerArtists: (
        "c-0012345",
        TopCustomerArtists("c-0012345", [ArtistStreams(f"a-0000{n}", 30 - n) for n in range(3)]),
    ),
    TicketResponse: ("t-00123456", TicketResponse("t-00123456", "e-00123", "c-0012345", "CONFIRMED", 1234)),
    TopArtists: (None, TopArtists(_TOP)),
    CustomersByTopArtist: ("a-00001", CustomersByTopArtist("a-00001", ["c-0012345", "c-0054321", "c-0099999"])),
    TrendingArtists: (None, TrendingArtists("2026-11-01T10:00:00Z", "2026-11-01T11:00:00Z", _TOP)),
    EventAlert: ("e-00123", EventAlert("e-00123", "a-00001", "v-012", 20000, 19000, 1000, "NEARLY_SOLD_OUT")),
    EventStreamerAlert: (
        "c-0012345",
        EventStreamerAlert(
            "c-0012345", "sarah.smith@example.com", "e-00123", "a-00001", "v-012", "2027-01-01T20:00:00Z", 17
        ),
    ),
    MustSeeVenue: ("v-012", MustSeeVenue("customers", "v-012", "U.S. Bank Stadium", 4321)),
    GenreEventSuggestion: ("c-0012345", GenreEventSuggestion("c-0012345", "e-00123", "a-00001", "Pop", "NEW_EVENT")),
    GlobalTotals: (None, GlobalTotals(100000, 1000000, 2000, 200000, 17, "2026-11-01T10:00:00Z")),
    ZipcodeTickets: ("55415", ZipcodeTickets("55415", 321)),
    ZipcodePopularEventAlert: ("c-0012345", ZipcodePopularEventAlert("c-0012345", "55415", "e-00123", "c-0054321")),
}
"""One record of every kind the dataflows write (dead letters aside), as big as the bench's world makes them,
with the key its sink gives it."""


class Limit(NamedTuple):
    """How many records the plain client moved, and in how many seconds."""

    what: str
    records: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def raw_consume(settings: Settings) -> Limit:
    """confluent-kafka batch consume + msgspec decode of the whole streams topic, one process, same fetch settings."""
    topic = settings.topics.input("streams")
    consumer = Consumer(
        settings.kafka_config()
        | FETCH_CONFIG
        | {"group.id": settings.topics.client_id("bench"), "enable.partition.eof": True, "enable.auto.commit": False}
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    decoder = msgspec.json.Decoder(Stream)
    started = time.monotonic()
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    pending, records = set(partitions), 0
    while pending:
        for message in consumer.consume(1000, 0.05):
            error = message.error()
            if error is None:
                decoder.decode(message.value())  # type: ignore[arg-type]  # no tombstones here
                records += 1
            elif error.code() == KafkaError._PARTITION_EOF:
                pending.discard(message.partition())
    seconds = time.monotonic() - started
    consumer.close()
    return Limit("raw confluent-kafka + msgspec consume (streams)", records, seconds)


def raw_produce(settings: Settings, records: int, partitions: int) -> Limit:
    """confluent-kafka produce of `records` msgspec-encoded outputs, one process, with the sinks' producer settings.

    The records take turns through OUTPUT_SAMPLES, in batches of UTOPIA_BATCH_SIZE polled as a sink
    polls them, to a topic of `partitions` partitions made for it and deleted after. The time runs
    from the first record to the delivery of the last.
    """
    topic = f"{settings.topics.output_prefix}bench-raw-produce-{uuid.uuid4().hex[:6]}"
    topics.create(settings, partitions, names=[topic], quiet=True)
    failures: list[KafkaError] = []

    def failed(error: KafkaError, _: Message) -> None:
        failures.append(error)

    producer = Producer(
        settings.kafka_config()
        | CLIENT_CONFIG
        | PRODUCER_CONFIG
        | {"client.id": settings.topics.client_id("bench"), "delivery.report.only.error": True, "on_delivery": failed}
    )
    encode = msgspec.json.Encoder().encode
    samples = cycle(OUTPUT_SAMPLES.values())
    try:
        started, left = time.monotonic(), records
        while left:
            batch = min(left, settings.batch_size)
            for key, value in islice(samples, batch):
                encoded_key = None if key is None else key.encode()
                try:
                    producer.produce(topic, encode(value), encoded_key)
                except BufferError:
                    send(producer, topic, encoded_key, encode(value))
            producer.poll(0)
            left -= batch
        producer.flush()
        seconds = time.monotonic() - started
    finally:
        topics.delete(settings, [topic])
    if failures:
        raise SystemExit(f"the raw producer's topic {topic} refused {len(failures)} record(s): {failures[0].str()}")
    return Limit("raw confluent-kafka + msgspec produce (outputs)", records, seconds)
