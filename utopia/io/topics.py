"""The project's topics through the Kafka admin API: `utopia topics create` and `utopia topics delete`.

Changelog outputs (models.CHANGELOGS) are created compacted (`cleanup.policy=compact`), as Kafka
Streams creates a KTable's changelog topic: the broker may drop a key's older values, never its
latest, so a consumer reading from the start still finds every key's current value. The other
outputs are event streams, kept by time (the broker's retention); the inputs are kept for ever
(INPUT_CONFIG).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic

from utopia.config import ConfigError, Settings
from utopia.io.kafka_io import admin, existing_topics
from utopia.models import CHANGELOGS, INPUT_RECORDS, OUTPUT_RECORDS

COMPACTED = {"cleanup.policy": "compact"}

INPUT_CONFIG = {"retention.ms": "-1"}
"""Input topics keep their records however old: a generated data set has fixed dates (2026-11-01 unless
`utopia generate --start` says otherwise), and at Kafka's default retention (7 days) the broker deleted
such a data set minutes after it was loaded (utopia.io.retention)."""


def all_topics(settings: Settings) -> list[str]:
    """Every input topic, every output topic and the dead-letter topic, with prefixes and suffix."""
    names = settings.topics
    return [names.input(n) for n in INPUT_RECORDS] + output_topics(settings)


def output_topics(settings: Settings) -> list[str]:
    """Every output topic, the dead-letter topic included."""
    return [settings.topics.output(n) for n in OUTPUT_RECORDS]


def topic_config(settings: Settings, name: str) -> dict[str, str]:
    """The settings a topic is created with: inputs keep their records, changelogs are compacted, the rest has the
    broker's defaults."""
    if name in set(settings.topics.all_inputs()):
        return INPUT_CONFIG
    return COMPACTED if name in {settings.topics.output(n) for n in CHANGELOGS} else {}


def create(
    settings: Settings, partitions: int = 3, replication: int = 1, names: list[str] | None = None, quiet: bool = False
) -> list[str]:
    """Create the missing ones among `names` (default: all topics), each with its `topic_config`.

    Returns those created.
    """
    # Each name once: librdkafka crashes on a request that names one topic twice.
    wanted = list(dict.fromkeys(all_topics(settings) if names is None else names))
    existing = existing_topics(settings)
    missing = [n for n in wanted if n not in existing]
    if missing:
        client = admin(settings)  # must outlive the futures
        futures = client.create_topics(
            [NewTopic(n, partitions, replication, config=topic_config(settings, n)) for n in missing]
        )
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
    _wait(settings, lambda listed: set(names) - listed, "were created but are still not listed", timeout_s)


def gone(settings: Settings, names: list[str], timeout_s: float = 30.0) -> None:
    """Wait until the broker no longer lists these deleted topics: `utopia topics create` right after would find
    them still there and create nothing (`make reset` then `make generate`)."""
    _wait(settings, lambda listed: set(names) & listed, "were deleted but are still listed", timeout_s)


def _wait(settings: Settings, pending: Callable[[set[str]], set[str]], still: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while left := sorted(pending(existing_topics(settings))):
        if time.monotonic() > deadline:
            raise ConfigError(f"topic(s) {', '.join(left)} {still} after {timeout_s:.0f} s")
        time.sleep(0.1)


def own_topics(settings: Settings) -> tuple[list[str], list[str]]:
    """The project's output topics (dead letters included) and input topics that exist on the broker.

    Named exactly, not by prefix: on a shared cluster other teams' topics share the prefixes.
    """
    existing = existing_topics(settings)
    outputs = [n for n in output_topics(settings) if n in existing]
    return outputs, [n for n in settings.topics.all_inputs() if n in existing]


def delete(settings: Settings, names: list[str]) -> None:
    """Delete these topics, waiting until the broker has; a refusal is one line naming the topic and why."""
    if not names:
        return
    client = admin(settings)  # must outlive the futures
    for name, future in client.delete_topics(list(dict.fromkeys(names)), operation_timeout=30).items():
        try:
            future.result(timeout=30)
        except KafkaException as error:
            raise ConfigError(f"cannot delete topic {name}: {error.args[0].str()}") from None
    gone(settings, names)
