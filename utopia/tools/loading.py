"""Putting generated data where the dataflows read it: topic files, or the input topics on Kafka."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import msgspec
from confluent_kafka import Producer
from tqdm import tqdm

from utopia.config import ConfigError, Settings, Topics
from utopia.dates import parse_eventdate
from utopia.io.faults import client_log, configure_logging
from utopia.io.kafka_io import send, topic_configs
from utopia.io.retention import DAY_MS, KAFKA_DEFAULT_RETENTION_MS, too_old_to_load
from utopia.models import INPUT_RECORDS, Record
from utopia.tools.generator import START_MS, Generated, Sizes, generate, live, live_namespace


def add_size_options(parser: argparse.ArgumentParser) -> None:
    for size in dataclasses.fields(Sizes):
        parser.add_argument(f"--{size.name}", type=_size, default=size.default, help=f"default {size.default}")


def _size(text: str) -> int:
    """A size option: a usage error below 1, where the generator would fail with no customer or event to pick."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return n


def start_time(text: str) -> int:
    """A `--start` option: an ISO date (midnight) or date and time, in UTC unless it has an offset, or
    `yesterday` (at midnight UTC); as epoch milliseconds."""
    if text == "yesterday":
        return (int(time.time() * 1000) // DAY_MS - 1) * DAY_MS
    try:
        return int(parse_eventdate(text).timestamp() * 1000)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date such as 2026-11-01, a time such as 2026-11-01T08:00:00Z, or yesterday, got {text!r}"
        ) from None


def sizes_from(args: argparse.Namespace) -> Sizes:
    return Sizes(**{size.name: getattr(args, size.name) for size in dataclasses.fields(Sizes)})


class FileLine(msgspec.Struct):
    """A Kafka record as a line of a topic file (docs/outputs.md#file-mode)."""

    key: str | None
    value: Record | None
    timestamp: int


def _progress(records: Iterable[Generated], sizes: Sizes) -> Iterable[Generated]:
    expected = sizes.streams + sizes.tickets + sizes.customers * 4 + sizes.artists + sizes.events
    return tqdm(records, total=expected, unit=" records", unit_scale=True, file=sys.stderr, leave=False, disable=None)


def write_dir(
    directory: Path, sizes: Sizes, seed: int, topics: Topics = Topics(), start_ms: int = START_MS
) -> dict[str, int]:
    """Write a generated data set as one `<topic>.jsonl` per input topic; returns the counts.

    `start_ms` (epoch milliseconds) is when it begins; `produce` gives the same records to Kafka.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files = {name: (directory / f"{topics.input(name)}.jsonl").open("wb") for name in INPUT_RECORDS}
    counts = dict.fromkeys(INPUT_RECORDS, 0)
    encoder = msgspec.json.Encoder()
    try:
        for record in _progress(generate(sizes, seed, start_ms), sizes):
            files[record.topic].write(encoder.encode(FileLine(record.key, record.value, record.timestamp)) + b"\n")
            counts[record.topic] += 1
    finally:
        for file in files.values():
            file.close()
    print(f"generated {sum(counts.values()):,} records into {directory}: {_summary(counts)}")
    return counts


class _Refused:
    """Deliveries the broker refused (a timestamp too far ahead, a record too large): never silently."""

    def __init__(self) -> None:
        self.count, self.first = 0, ""

    def __call__(self, error, message) -> None:
        if error is not None:
            self.count += 1
            self.first = self.first or f"{message.topic()}: {error.str()}"

    def check(self) -> None:
        if self.count:
            raise ConfigError(f"{self.count:,} record(s) not delivered, the first to {self.first}")


def _producer(settings: Settings, refused: _Refused, logger: logging.Logger | None = None) -> Producer:
    client_id = settings.topics.client_id("generator")
    # Idempotence keeps each partition in send order through retries: a fresh broker answers the first
    # requests with "not leader" and, without it, a retried batch landed after later ones.
    return Producer(
        settings.kafka_config()
        | {
            "client.id": client_id,
            "linger.ms": 20,
            "compression.type": "lz4",
            "enable.idempotence": True,
            "on_delivery": refused,
        }
        | ({"logger": logger} if logger is not None else {})
    )


def _ensure_input_topics(settings: Settings, partitions: int = 3) -> None:
    from utopia.io import topics

    topics.create(settings, partitions, names=settings.topics.all_inputs())


def produce(
    settings: Settings, sizes: Sizes, seed: int, partitions: int = 3, start_ms: int = START_MS
) -> dict[str, int]:
    """Produce a generated data set to the input topics, keyed by id, with the generated timestamps.

    The records are those `write_dir` writes with the same arguments. Missing input topics are
    created with `partitions` partitions (and kept for ever, utopia.io.topics). A data set the
    broker would soon delete for its age is refused, in one line (utopia.io.retention); Kafka 4
    also refuses timestamps more than an hour ahead, which `_Refused` reports.
    """
    _ensure_input_topics(settings, partitions)
    _check_retention(settings, start_ms)
    refused = _Refused()
    producer, encoder = _producer(settings, refused), msgspec.json.Encoder()
    counts = dict.fromkeys(INPUT_RECORDS, 0)
    for record in _progress(generate(sizes, seed, start_ms), sizes):
        send(producer, settings.topics.input(record.topic), record.key, encoder.encode(record.value), record.timestamp)
        counts[record.topic] += 1
    producer.flush()
    refused.check()
    print(f"produced {sum(counts.values()):,} records to {settings.bootstrap_servers}: {_summary(counts)}")
    return counts


def _check_retention(settings: Settings, start_ms: int) -> None:
    """A ConfigError if an input topic would soon delete a data set starting at `start_ms`.

    Where a topic's retention cannot be read (no DescribeConfigs right), a note if Kafka's default would.
    """
    inputs, now_ms = settings.topics.all_inputs(), int(time.time() * 1000)
    configs = topic_configs(settings, inputs)
    problem = too_old_to_load(configs, start_ms, now_ms)
    if problem:
        raise ConfigError(problem)
    unknown = [topic for topic in inputs if topic not in configs]
    if unknown and too_old_to_load({"": {"retention.ms": str(KAFKA_DEFAULT_RETENTION_MS)}}, start_ms, now_ms):
        print(
            f"note: the retention.ms of {', '.join(unknown)} cannot be read; at Kafka's default (7 days) the broker "
            "would soon delete this data set for its age (--start yesterday avoids that)",
            file=sys.stderr,
        )


def produce_live(settings: Settings, seed: int, rate: float) -> None:
    """Keep producing a live world at about `rate` records a second until Ctrl-C or SIGTERM, then say how many.

    The producer's own log goes through the dataflows' repeat filter: during a broker outage it
    printed 263 raw lines in 67 s, and SIGTERM ended it with rc 143 and no word.
    """
    configure_logging("generate")
    _ensure_input_topics(settings)
    refused = _Refused()
    producer, encoder = _producer(settings, refused, client_log), msgspec.json.Encoder()
    started, sent, stop = time.monotonic(), 0, threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda number, frame: stop.set())
    namespace = live_namespace(int(time.time() * 1000))
    print(
        f"producing live to {settings.bootstrap_servers} at ~{rate:g} records/s, a world of ids of its own "
        f"(e-{namespace}000000, ...); Ctrl-C stops",
        file=sys.stderr,
    )
    try:
        with tqdm(unit=" records", file=sys.stderr, disable=None) as bar:
            for record in live(seed, namespace=namespace):
                if stop.is_set():
                    break
                send(producer, settings.topics.input(record.topic), record.key, encoder.encode(record.value))
                sent += 1
                bar.update()
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    producer.poll(0)
                    stop.wait(ahead)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    undelivered = producer.flush(STOP_FLUSH_S)
    print(
        f"stopped after producing {sent:,} records"
        + (
            f", {undelivered:,} of them not delivered yet (the broker did not answer within {STOP_FLUSH_S:.0f}s)"
            if undelivered
            else ""
        ),
        file=sys.stderr,
    )
    refused.check()


STOP_FLUSH_S = 10.0
"""How long a stopped live feed waits for the broker to take what it sent."""


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {topic}" for topic, n in counts.items() if n)
