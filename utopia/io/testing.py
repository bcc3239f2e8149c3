"""Running a dataflow in-process on hand-made records: Bytewax's TestingSource and TestingSink."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, timedelta, tzinfo
from typing import Any

import msgspec
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main
from confluent_kafka import Message

from utopia.codec import InRecord, RecordBatch
from utopia.config import Topics
from utopia.models import TOPIC_OF, Output, Record
from utopia.steps import Out, Placed


def kafka_records(items: Iterable[Record | tuple[str, bytes | None]], topics: Topics = Topics()) -> list[InRecord]:
    """Records as a broker would hand them out, in the given order.

    An item is a model instance (its topic follows from its type, its key is its id) or a
    `(short topic name, raw value bytes)` pair for bad input and tombstones.
    """
    offsets: dict[str, int] = defaultdict(int)
    records = []
    value: bytes | None
    for timestamp, item in enumerate(items):
        if isinstance(item, Record):
            topic, key, value = TOPIC_OF[type(item)], item.id, msgspec.json.encode(item)
        else:
            (topic, value), key = item, None
        full = topics.input(topic)
        records.append(InRecord(full, 0, offsets[full], key, value, timestamp))
        offsets[full] += 1
    return records


def with_kafka_messages(value: Any) -> Any:
    """A value of a keyed step as a Kafka run has it: its raw records (held, placed or not) as Kafka messages.

    In-process runs read `InRecord`s; what crosses to another process in a Kafka run carries
    confluent-kafka's `Message`s, which travel differently (utopia.steps.wire).
    """
    if isinstance(value, Placed):
        return msgspec.structs.replace(value, value=with_kafka_messages(value.value))
    if type(value) is tuple and len(value) == 2 and type(value[0]) is InRecord:
        raw = value[0]
        key = raw.key.encode() if isinstance(raw.key, str) else raw.key
        message = Message(
            topic=raw.topic,
            partition=raw.partition,
            offset=raw.offset,
            key=key,
            value=raw.value,
            timestamp=(1, raw.timestamp),
        )
        return (message, value[1])
    return value


class TestingIO:
    """One TestingSource (a single partition, batches of `batch_size`) and a list per output name."""

    __test__ = False  # not a pytest test class

    def __init__(self, records: list[InRecord], batch_size: int = 4, topics: Topics = Topics(), zone: tzinfo = UTC):
        self.records, self.batch_size, self.topics, self.zone = records, batch_size, topics, zone
        self.changelog = timedelta(0)  # no cache: every change is an output, as Kafka Streams' test driver writes
        self.outputs: dict[str, list[Out]] = defaultdict(list)
        self.inputs: list[str] = []  # every topic a source was made for

    def source(self, dataflow: str, topics: list[str]) -> TestingSource:
        self.inputs.extend(topics)
        mine = [r for r in self.records if r.topic in topics]
        size = self.batch_size
        return TestingSource([RecordBatch(mine[i : i + size], 0, i) for i in range(0, len(mine), size)])

    def sink(self, dataflow: str, output: str) -> TestingSink:
        return TestingSink(self.outputs[output])

    def values(self, output: str) -> list[Output]:
        return [value for _, value in self.outputs[output]]

    def latest(self, output: str) -> dict[str | None, Output]:
        """The changelog view of an output: the last value per key."""
        return dict(self.outputs[output])


def run(flow: Dataflow, workers: int = 1) -> None:
    """Run to completion in this process with `workers` worker threads."""
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
