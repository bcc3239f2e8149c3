"""Creating the project's topics through the Kafka admin API (`utopia topics create`)."""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic

from utopia.config import ConfigError, Settings
from utopia.io.kafka_io import admin, existing_topics
from utopia.models import INPUT_RECORDS, OUTPUT_RECORDS

INPUT_CONFIG = {"retention.ms": "-1"}
"""Input topics keep their records however old: a generated data set has fixed dates (2026-11-01 unless
`utopia generate --start` says otherwise), and at Kafka's default retention (7 days) the broker deleted
such a data set minutes after it was loaded (utopia.io.retention)."""


def all_topics(settings: Settings) -> list[str]:
    """Every input topic, every output topic and the dead-letter topic, with prefixes and suffix."""
    names = settings.topics
    return [names.input(n) for n in INPUT_RECORDS] + [names.output(n) for n in OUTPUT_RECORDS]


def create(
    settings: Settings, partitions: int = 3, replication: int = 1, names: list[str] | None = None, quiet: bool = False
) -> list[str]:
    """Create the missing ones among `names` (default: all topics), inputs with INPUT_CONFIG; returns those created."""
    # Each name once: librdkafka crashes on a request that names one topic twice.
    wanted = list(dict.fromkeys(all_topics(settings) if names is None else names))
    existing = existing_topics(settings)
    missing = [n for n in wanted if n not in existing]
    if missing:
        client = admin(settings)  # must outlive the futures
        inputs = set(settings.topics.all_inputs())
        futures = client.create_topics([NewTopic(n, partitions, replication, config=INPUT_CONFIG if n in inputs else {})
                                        for n in missing])
        for name, future in futures.items():
            try:
                future.result(timeout=30)
            except KafkaException as error:
                if error.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise ConfigError(f"cannot create topic {name}: {error.args[0].str()}") from None
        visible(settings, missing)
    if not quiet:
        print(f"topics: {len(missing)} created, {len(wanted) - len(missing)} already there")
    return missing


def visible(settings: Settings, names: list[str], timeout_s: float = 30.0) -> None:
    """Wait until the broker lists these new topics in its metadata.

    A created topic is committed before every broker's metadata knows it: a dataflow started right
    after asked a busy local broker too soon and found its output topics missing (`make bench`).
    """
    deadline = time.monotonic() + timeout_s
    while missing := sorted(set(names) - existing_topics(settings)):
        if time.monotonic() > deadline:
            raise ConfigError(f"topic(s) {', '.join(missing)} were created but are still not listed after "
                              f"{timeout_s:.0f} s")
        time.sleep(0.1)


def delete(settings: Settings, names: list[str]) -> None:
    """Delete these topics (the benchmark's per-run outputs), waiting until the broker has."""
    client = admin(settings)
    for future in client.delete_topics(list(dict.fromkeys(names)), operation_timeout=30).values():
        future.result(timeout=30)
