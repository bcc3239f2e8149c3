"""`utopia tail <output>`: an output topic's records as JSON lines, as kcat prints them, with the project's settings.

A line is `{"topic", "partition", "offset", "timestamp", "key", "value"}`: the timestamp in epoch
milliseconds, the key as text and the value as the JSON the dataflow wrote, so `jq` reads it as
it is. A key or value that is not UTF-8 is base64, with `"key_encoding"` or `"encoding": "base64"`,
as dead letters keep them; a value that is not JSON is its text.

By default it prints the last LAST records of each partition, as `tail` prints a file's last
lines; `--from-beginning` every record still kept (for a compacted changelog at least each key's
latest value). Without `--follow` it stops once every partition is read to its end. Partitions
are read side by side: records come in order within a partition, not across them. Ctrl-C and
SIGTERM end it with rc 0. It reads `read_committed`, as `utopia watch` does, so an exactly-once
dataflow's records show once committed; it joins no consumer group and commits nothing.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import closing
from typing import BinaryIO

import msgspec
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from utopia.codec import raw_text
from utopia.config import ConfigError, Settings
from utopia.io.faults import client_log, configure_logging
from utopia.io.kafka_io import CLIENT_CONFIG, existing_topics
from utopia.io.kafka_source import CONNECT_TIMEOUT_S
from utopia.io.permissions import check_group

LAST = 10
"""Records of each partition printed by default, from its end."""
_OFFSET_TAIL_BASE = -2000
"""librdkafka's RD_KAFKA_OFFSET_TAIL_BASE: a start of `_OFFSET_TAIL_BASE - n` is n records before the end."""


def from_end(records: int) -> int:
    """The logical start offset `records` before the end of a partition (librdkafka's RD_KAFKA_OFFSET_TAIL)."""
    return _OFFSET_TAIL_BASE - records


class Line(msgspec.Struct, omit_defaults=True):
    """One record as printed (the module doc)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: str | None
    value: msgspec.Raw | str | None
    key_encoding: str | None = None
    encoding: str | None = None


_json = msgspec.json.Decoder(msgspec.Raw)
_encoder = msgspec.json.Encoder()


def line(message: Message) -> bytes:
    """The JSON line of a record, newline included."""
    raw_key = message.key()
    key, key_encoding = (None, None) if raw_key is None else raw_text(raw_key)
    value, encoding = _value(message.value())
    _, timestamp = message.timestamp()
    # A consumed message has its topic, partition and offset (the stubs allow None).
    fields = Line(
        message.topic(),  # type: ignore[arg-type]
        message.partition(),  # type: ignore[arg-type]
        message.offset(),  # type: ignore[arg-type]
        timestamp,
        key,
        value,
        key_encoding,
        encoding,
    )
    return _encoder.encode(fields) + b"\n"


def _value(value: bytes | None) -> tuple[msgspec.Raw | str | None, str | None]:
    if value is None:
        return None, None
    try:
        return _json.decode(value), None
    except msgspec.DecodeError:
        return raw_text(value)


def batches(settings: Settings, topic: str, start: int, follow: bool) -> Iterator[list[Message]]:
    """The records of every partition of `topic` from `start` (an offset or a logical one), as they are fetched,
    until each partition's end, or for ever with `follow`."""
    if topic not in existing_topics(settings):  # also one line for an unreachable or refusing broker
        raise ConfigError(
            f"output topic {topic} does not exist on {settings.bootstrap_servers}: create it with "
            "`utopia topics create` and run its dataflow"
        )
    check_group(settings, settings.topics.client_id("tail"))
    consumer = Consumer(
        settings.kafka_config()
        | CLIENT_CONFIG
        | {
            "group.id": settings.topics.client_id("tail"),  # none joined: the partitions are assigned
            "client.id": settings.topics.client_id("tail"),
            "enable.auto.commit": "false",
            "enable.partition.eof": "true",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "logger": client_log,
        }
    )
    with closing(consumer):
        partitions = sorted(consumer.list_topics(topic, timeout=CONNECT_TIMEOUT_S).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, partition, start) for partition in partitions])
        behind = set(partitions)
        while follow or behind:
            batch = []
            for message in consumer.consume(500, timeout=0.2):
                error = message.error()
                if error is None:
                    batch.append(message)
                elif error.code() == KafkaError._PARTITION_EOF:
                    behind.discard(message.partition())
                else:
                    raise KafkaException(error)
            yield batch


def run(settings: Settings, topic: str, start: int, follow: bool, key: str | None, out: BinaryIO) -> None:
    """Print the records of `topic` (only those of `key`, if given) to `out` until the end, or Ctrl-C or SIGTERM."""
    configure_logging("tail")  # librdkafka's lines go to stderr, told once; stdout holds only records
    wanted = None if key is None else key.encode()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for batch in batches(settings, topic, start, follow):
            out.writelines(line(message) for message in batch if wanted is None or message.key() == wanted)
            out.flush()  # a reader at the other end of a pipe (jq) sees records as they come
    except KeyboardInterrupt:
        pass  # how a followed tail ends: not a failure
    except BrokenPipeError:  # the reader went away (`| head`): done
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())  # and Python's final flush finds nowhere to fail
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(number: int, frame) -> None:
    raise KeyboardInterrupt
