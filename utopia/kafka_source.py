"""Kafka input in record-timestamp order: each worker merges the partitions it reads (docs/outputs.md#ordering).

Read at its own pace, each topic partition runs ahead or behind the others: a replay from the
earliest offsets may read every event before the streams that came before them, and a dataflow
that joins topics then answers differently from a live run. Kafka Streams solves this with
timestamp synchronization; this is the same for Bytewax.

Every topic partition is still its own Bytewax input partition, so recovery snapshots keep each
partition's offset. The partitions a worker reads share one `_Merger`, and one of them, the lead,
emits for all: a record is released once no partition that could still send an earlier one is
waiting to be fetched, and the released records go out as one batch in (timestamp, offset,
topic, partition) order, the order file mode replays files in. A partition with nothing fetched
holds the others back for at most `UTOPIA_MAX_IDLE_MS`, so a quiet topic never stalls a live
dataflow; at the end of a partition (UTOPIA_TAIL=false) it is simply done.

Timestamps of one partition are taken as their running maximum, so each partition's records keep
their offset order whatever their timestamps.
"""

from __future__ import annotations

import bisect
import threading
import time
import weakref
import zlib
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import itemgetter

from bytewax.inputs import StatefulSourcePartition
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from utopia.codec import KafkaBatch

CONNECT_TIMEOUT_S = 10.0
IDLE_POLL = timedelta(milliseconds=10)
"""How soon a worker with nothing to release looks again."""
_FOREVER = float("inf")
_last = itemgetter(-1)


class PartitionReader:
    """One topic partition: its consumer, and the records fetched but not yet released."""

    __slots__ = ("name", "topic", "partition", "rank", "consumer", "pending", "stamps", "last_released",
                 "next_offset", "committed", "stalled_since", "ended", "closed")

    def __init__(self, name: str, config: dict, topic: str, partition: int, offset: int):
        self.name, self.topic, self.partition = name, topic, partition
        self.rank = (topic, partition)  # how records of equal timestamp and offset are ordered
        self.consumer = Consumer(config)
        if offset < 0:
            # A logical offset (the end) is looked up at the partition's leader; if the leader is
            # not known yet, librdkafka retries only after 500 ms. Learn it first.
            self.consumer.list_topics(topic, timeout=CONNECT_TIMEOUT_S)
        self.consumer.assign([TopicPartition(topic, partition, offset)])
        self.pending: list[Message] = []
        self.stamps: list[int] = []  # running maximum of the pending records' timestamps
        self.last_released: int | None = None
        self.next_offset = self.committed = offset  # where to resume: after the last released record
        self.stalled_since: float | None = None
        self.ended = False
        self.closed = False

    @property
    def seen(self) -> int | None:
        """The newest timestamp fetched: no later record of this partition is older (running maximum)."""
        return self.stamps[-1] if self.stamps else self.last_released

    def fetch(self, max_records: int, tail: bool, now: float) -> None:
        messages = self.consumer.consume(max_records, 0)
        if any(m.error() is not None for m in messages):
            for message in messages:
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
            self.ended = not tail and messages[-1].error() is not None
            messages = [m for m in messages if m.error() is None]
        if not messages:
            if self.stalled_since is None:
                self.stalled_since = now
            return
        self.stalled_since = None
        newest = self.seen if self.seen is not None else -1 << 62
        stamps = self.stamps
        for _, stamp in map(Message.timestamp, messages):
            newest = stamp if stamp > newest else newest
            stamps.append(newest)
        self.pending += messages

    def blocks(self, now: float, max_idle_s: float) -> bool:
        """Whether records later than `seen` must wait for this partition's next fetch."""
        if self.ended:
            return False
        return self.stalled_since is None or now - self.stalled_since < max_idle_s

    def take(self, count: int) -> tuple[list[Message], list[int]]:
        """The first `count` pending records and their timestamps, released."""
        taken, stamps = self.pending[:count], self.stamps[:count]
        del self.pending[:count], self.stamps[:count]
        self.last_released = stamps[-1]
        self.next_offset = taken[-1].offset() + 1
        return taken, stamps

    @property
    def drained(self) -> bool:
        return self.ended and not self.pending

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.consumer.close()


class _Merger:
    """The partitions one worker reads, released together in timestamp order: one lane of input."""

    def __init__(self, batch_size: int, tail: bool, max_idle_s: float):
        self.batch_size, self.tail, self.max_idle_s = batch_size, tail, max_idle_s
        self.parts: dict[str, PartitionReader] = {}
        self.lead: str | None = None
        self.lane = 0
        self.position = 0

    def add(self, part: PartitionReader) -> None:
        self.parts[part.name] = part
        if self.lead is None:
            self.lead, self.lane = part.name, zlib.crc32(part.name.encode())

    def release(self) -> KafkaBatch | None:
        """Every record no partition can still precede, merged; None when there is none yet."""
        now = time.monotonic()
        parts = [p for p in self.parts.values() if not p.closed]
        for part in parts:
            if not part.ended and len(part.pending) < self.batch_size:
                part.fetch(self.batch_size, self.tail, now)
        bound = _FOREVER
        for part in parts:
            if part.blocks(now, self.max_idle_s):
                seen = part.seen
                if seen is None:
                    return None  # nothing fetched yet: anything may still come first
                bound = min(bound, seen)
        cuts = [(part, len(part.stamps) if bound is _FOREVER else bisect.bisect_left(part.stamps, bound))
                for part in parts]
        cuts = [(part, cut) for part, cut in cuts if cut]
        if not cuts:
            return None
        if len(cuts) == 1:
            part, cut = cuts[0]
            messages, _ = part.take(cut)
            topic = part.topic
        else:
            keyed = []
            for part, cut in cuts:
                taken, stamps = part.take(cut)
                keyed += zip(stamps, map(Message.offset, taken), repeat(part.rank), taken)
            keyed.sort()  # (timestamp, offset, rank) is unique: the messages themselves are never compared
            messages = list(map(_last, keyed))
            topics = {part.topic for part, _ in cuts}
            topic = topics.pop() if len(topics) == 1 else None
        first = messages[0].timestamp()[1]
        position = max(self.position, first << 20)
        self.position = position + len(messages)
        return KafkaBatch(topic, messages, self.lane, position)

    def commit(self) -> None:
        """The lead's epoch ends: what has been released so far is what every partition resumes after."""
        for part in self.parts.values():
            part.committed = part.next_offset

    @property
    def finished(self) -> bool:
        return all(part.drained for part in self.parts.values())


class _Registry(threading.local):
    """Per worker thread: the merger of each Kafka source step."""

    def __init__(self) -> None:
        self.mergers: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


_registry = _Registry()


def merger_for(key: tuple, batch_size: int, tail: bool, max_idle_s: float) -> _Merger:
    """The merger of this worker thread for the source `key`; made when its first partition is built."""
    merger = _registry.mergers.get(key)
    if merger is None:
        merger = _registry.mergers[key] = _Merger(batch_size, tail, max_idle_s)
    return merger


class MergedPartition(StatefulSourcePartition[KafkaBatch, int]):
    """A topic partition as Bytewax sees it: the lead emits the merged batches, the others only keep offsets."""

    def __init__(self, merger: _Merger, part: PartitionReader):
        self.merger, self.part = merger, part
        merger.add(part)
        self.awake: datetime | None = None

    @property
    def lead(self) -> bool:
        return self.merger.lead == self.part.name

    def next_batch(self) -> list[KafkaBatch]:
        if self.lead:
            if self.merger.finished:
                raise StopIteration()
            batch = self.merger.release()
            self.awake = None if batch is not None else datetime.now(UTC) + IDLE_POLL
            return [] if batch is None else [batch]
        if self.part.drained:
            raise StopIteration()
        self.awake = datetime.now(UTC) + IDLE_POLL
        return []

    def next_awake(self) -> datetime | None:
        return self.awake

    def snapshot(self) -> int:
        if self.lead:
            self.merger.commit()
        return self.part.next_offset if self.part.drained else self.part.committed

    def close(self) -> None:
        self.part.close()
