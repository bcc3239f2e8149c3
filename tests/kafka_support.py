"""Helpers for the tests that go through the real local broker (`make kafka-up`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import msgspec
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from utopia.config import ConfigError, Settings
from utopia.io.kafka_io import existing_topics, send
from utopia.io.topics import create

ROOT = Path(__file__).resolve().parent.parent


class Cluster:
    """A broker with topics of this test's own (a random prefix), so reruns never see old data.

    The topics are deleted when the test session ends (tests/conftest.py): a broker that keeps
    every run's topics ends up with tens of thousands of partition directories and stops.
    """

    made: list[Cluster] = []

    def __init__(self) -> None:
        run = uuid.uuid4().hex[:8]
        self.env = {
            "UTOPIA_INPUT_PREFIX": f"it-{run}-data-demo-",
            "UTOPIA_OUTPUT_PREFIX": f"it-{run}-kafka-workshop-",
            "UTOPIA_TAIL": "false",
        }
        self.settings = Settings.from_env(os.environ | self.env)
        try:
            existing_topics(self.settings)
        except ConfigError as error:
            raise RuntimeError(f"{error}: start the local broker with `make kafka-up`") from None
        create(self.settings, partitions=3)
        Cluster.made.append(self)

    def topics(self) -> list[str]:
        """Every topic of this cluster's prefixes on the broker."""
        prefixes = (self.env["UTOPIA_INPUT_PREFIX"], self.env["UTOPIA_OUTPUT_PREFIX"])
        return sorted(t for t in existing_topics(self.settings) if t.startswith(prefixes))

    def produce(self, topic: str, records: list) -> None:
        """Records (model instances, or raw bytes) to an input topic, keyed by id."""
        producer = Producer(self.settings.kafka_config())
        for record in records:
            if isinstance(record, bytes):
                send(producer, self.settings.topics.input(topic), None, record)
            else:
                send(producer, self.settings.topics.input(topic), record.id, msgspec.json.encode(record))
        producer.flush()

    def run(self, dataflow: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """`python -m bytewax.run dataflows.<dataflow>`, as a user runs it, until the inputs end."""
        return subprocess.run(
            [sys.executable, "-m", "bytewax.run", f"dataflows.{dataflow}", *args],
            env=os.environ | self.env | (env or {}),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, dataflow: str, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> subprocess.Popen:
        """`python -m bytewax.run dataflows.<dataflow>` left running, e.g. tailing; the caller stops it."""
        return subprocess.Popen(
            [sys.executable, "-m", "bytewax.run", f"dataflows.{dataflow}", *args],
            env=os.environ | self.env | (env or {}),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_for(self, output: str, count: int, timeout_s: float) -> list[tuple[str | None, dict]]:
        """The records of an output topic once there are at least `count` (fails after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            records = self.read(output)
            if len(records) >= count or time.monotonic() > deadline:
                assert len(records) >= count, f"{output}: {len(records)} of {count} records after {timeout_s}s"
                return records
            time.sleep(0.2)

    def read(self, output: str) -> list[tuple[str | None, dict]]:
        """Every record of an output topic, partition by partition."""
        return read_topic(
            self.settings.kafka_config(), self.settings.topics.output(output), f"{self.env['UTOPIA_OUTPUT_PREFIX']}test"
        )


def read_topic(config: dict, topic: str, group: str = "kafka-workshop-test") -> list[tuple[str | bytes | None, dict]]:
    """Every committed record of a topic as (key, value), partition by partition, with the client settings `config`.

    Read `read_committed`, as a consumer of exactly-once outputs must (docs/outputs.md#delivery).
    """
    return [
        (_text(message.key()), msgspec.json.decode(message.value())) for message in read_messages(config, topic, group)
    ]


def read_messages(config: dict, topic: str, group: str = "kafka-workshop-test") -> list[Message]:
    """Every committed message of a topic, partition by partition (see `read_topic`)."""
    consumer = Consumer(
        config
        | {
            "group.id": group,
            "enable.partition.eof": True,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    pending, messages = set(partitions), []
    while pending:
        for message in consumer.consume(500, 1.0):
            if message.error():
                assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                pending.discard(message.partition())
            else:
                messages.append(message)
    consumer.close()
    return messages


def _text(key: bytes | None) -> str | bytes | None:
    """A key as text, or as its bytes when they are not UTF-8 (a dead letter keeps such a key as it came)."""
    try:
        return None if key is None else key.decode()
    except UnicodeDecodeError:
        return key
