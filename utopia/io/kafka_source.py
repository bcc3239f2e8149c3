"""Kafka input in record-timestamp order: each worker merges the partitions it reads (docs/outputs.md#ordering).

Read at its own pace, each topic partition runs ahead or behind the others: a replay from the
earliest offsets may read every event before the streams that came before them, and a dataflow
that joins topics then answers differently from a live run. Kafka Streams solves this with
timestamp synchronization; this is the same for Bytewax.

Every topic partition is still its own Bytewax input partition, so recovery snapshots keep each
partition's offset. The partitions a worker reads share one `_Merger`, and one of them, the lead,
emits for all: a record is released once no partition that could still send an earlier one is
waiting to be fetched, and the released records go out as one batch in (timestamp, offset,
topic, partition) order, the order file mode replays files in. A partition with records on the
broker not fetched yet holds the others back until they are fetched, however slow the machine or
the broker (as Kafka Streams waits for a partition with lag, KIP-695). A partition fetched to its
end holds them back for at most `UTOPIA_MAX_IDLE_MS`, so a quiet topic never stalls a live
dataflow; at the end of a partition with UTOPIA_TAIL=false it is simply done. A worker whose
partitions are all fetched to their end and released says so once a second, with an empty batch.

Timestamps of one partition are taken as their running maximum, so each partition's records keep
their offset order whatever their timestamps.
"""

from __future__ import annotations

import bisect
import threading
import time
import weakref
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import chain, count
from operator import itemgetter
from typing import Any

from bytewax.inputs import StatefulSourcePartition
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from utopia.codec import KafkaBatch
from utopia.io import stopping

CONNECT_TIMEOUT_S = 10.0
IDLE_POLL = timedelta(milliseconds=10)
"""How soon a worker with nothing to release looks again."""
CAUGHT_UP_EVERY_S = 1.0
"""How often a worker that has read all there is says so (an empty batch), while it stays so."""
_FOREVER = float("inf")
_last = itemgetter(-1)
_stamp = itemgetter(1)  # of Message.timestamp(): (type, milliseconds)


class PartitionReader:
    """One topic partition: its consumer, and the records fetched but not yet released."""

    __slots__ = (
        "name",
        "topic",
        "partition",
        "rank",
        "consumer",
        "pending",
        "stamps",
        "last_released",
        "next_offset",
        "resumes",
        "at_end",
        "idle_since",
        "ended",
        "closed",
        "answered",
        "deleted",
        "refused",
    )

    def __init__(
        self,
        name: str,
        config: dict,
        topic: str,
        partition: int,
        offset: int,
        answered: Callable[[], None] = lambda: None,
        deleted: Callable[[str, int, int, int, int], None] = lambda *where: None,
        refused: Callable[[str, KafkaError], None] = lambda topic, error: None,
    ):
        self.name, self.topic, self.partition = name, topic, partition
        self.answered = answered  # told whenever the broker sent something: it is reachable
        # Told (topic, partition, wanted offset, first and end offsets on the broker) when the records to read
        # next are gone, e.g. deleted by retention: the reader goes on from the first (utopia.io.retention).
        self.deleted = deleted
        # Told (topic, error) when Kafka refuses to let the principal read it (an ACL removed while running):
        # the run ends there in one line (utopia.io.kafka_io), instead of a Rust panic.
        self.refused = refused
        self.rank = (topic, partition)  # how records of equal timestamp and offset are ordered
        self.consumer = Consumer(config)
        # Fetching, and looking up a logical offset (the end), need the partition's leader; if it is
        # not known yet when the partition is assigned, librdkafka retries only later (the first
        # fetch of one partition of 12 came after 1.0 s instead of 0.1 s in about one 2-process
        # run in five, and held every other partition back). Learn it first.
        self.consumer.list_topics(topic, timeout=CONNECT_TIMEOUT_S)
        self.consumer.assign([TopicPartition(topic, partition, offset)])
        self.pending: list[Message] = []
        self.stamps: list[int] = []  # running maximum of the pending records' timestamps
        self.last_released: int | None = None
        self.next_offset = offset  # after the last released record
        self.resumes: dict[int, int] = {}  # where to resume after each of the lead's last two epochs (_Merger.resume)
        self.at_end = False  # fetched up to the end of the partition, as the broker last reported it
        self.idle_since: float | None = None  # when it got there
        self.ended = False
        self.closed = False

    @property
    def seen(self) -> int | None:
        """The newest timestamp fetched: no later record of this partition is older (running maximum)."""
        return self.stamps[-1] if self.stamps else self.last_released

    def fetch(self, max_records: int, tail: bool, now: float) -> None:
        messages = self.consumer.consume(max_records, 0)
        if not messages:
            return
        self.answered()
        if any(map(Message.error, messages)):  # a KafkaError is true, even for code 0
            for message in messages:
                error = message.error()
                if error is None or error.code() == KafkaError._PARTITION_EOF:
                    continue
                if error.code() != KafkaError._AUTO_OFFSET_RESET:
                    if error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                        self.refused(self.topic, error)
                    raise KafkaException(error)
                self._skip_deleted(message.offset())  # type: ignore[arg-type]  # a consumed offset is never None
            # librdkafka reports the end once each time the consumer catches up (past any
            # transaction markers, which are never fetched as records).
            last = messages[-1].error()
            self.at_end = last is not None and last.code() == KafkaError._PARTITION_EOF
            self.ended = self.at_end and not tail
            messages = [m for m in messages if m.error() is None]
        else:
            self.at_end = False
        self.idle_since = now if self.at_end else None
        if not messages:
            return
        stamps = list(map(_stamp, map(Message.timestamp, messages)))
        seen = self.seen
        if (seen is not None and stamps[0] < seen) or stamps != sorted(stamps):
            newest = -1 << 62 if seen is None else seen
            for n, stamp in enumerate(stamps):
                newest = stamps[n] = stamp if stamp > newest else newest
        self.stamps += stamps
        self.pending += messages

    def _skip_deleted(self, wanted: int) -> None:
        """The broker no longer has offset `wanted` (auto.offset.reset=error): on from its first record, and say so."""
        first, end = self.consumer.get_watermark_offsets(
            TopicPartition(self.topic, self.partition), timeout=CONNECT_TIMEOUT_S
        )
        self.consumer.assign([TopicPartition(self.topic, self.partition, first)])
        self.deleted(self.topic, self.partition, wanted, first, end)

    def blocks(self, now: float, max_idle_s: float) -> bool:
        """Whether records later than `seen` must wait for this partition's next fetch.

        Always while the broker has records of it not fetched yet; once fetched to its end, for
        `max_idle_s` from when it got there.
        """
        if self.ended:
            return False
        return not self.at_end or now - self.idle_since < max_idle_s  # type: ignore[operator]  # set when at_end

    def take(self, count: int) -> tuple[list[Message], list[int]]:
        """The first `count` pending records and their timestamps, released."""
        taken, stamps = self.pending[:count], self.stamps[:count]
        del self.pending[:count], self.stamps[:count]
        self.last_released = stamps[-1]
        self.next_offset = taken[-1].offset() + 1  # type: ignore[operator]  # a consumed offset is never None
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
        self.epochs_ended = 0  # by the lead, in this run
        self.places: dict[int, int] = {}  # the lane's place at the end of each of the lead's last two epochs
        self.held = False  # a partition ended the lead's current epoch first: it releases nothing more in it

    def add(self, part: PartitionReader) -> None:
        part.resumes = dict.fromkeys(self.places, part.next_offset)  # nothing of it went in epochs that ended
        self.parts[part.name] = part
        if self.lead is None:
            self.lead, self.lane = part.name, zlib.crc32(part.name.encode())

    def release(self) -> list[KafkaBatch]:
        """Every record no partition can still precede, merged, in batches of about `batch_size`."""
        if self.held:
            return []
        now = time.monotonic()
        parts = [p for p in self.parts.values() if not p.closed]
        # About a batch in all from the partitions still read: bigger batches made the dataflows
        # slower per record, smaller ones pay Bytewax's cost per batch more often.
        reading = [part for part in parts if not part.ended]
        share = -(-self.batch_size // max(len(reading), 1))
        for part in reading:
            if len(part.pending) < share:
                part.fetch(share, self.tail, now)
        bound = _FOREVER
        for part in parts:
            if part.blocks(now, self.max_idle_s):
                seen = part.seen
                if seen is None:
                    return []  # nothing fetched yet: anything may still come first
                bound = min(bound, seen)
        cuts = [(part, cut) for part in parts if (cut := _before(part.stamps, bound))]
        if not cuts:
            # Nothing is earlier than the bound: the partition that sets it holds only records of
            # that timestamp (a run of older ones written late takes its predecessor's), and as many
            # as a fetch brings. Fetch on past them, or a full queue would wait for ever.
            for part in reading:
                if part.seen == bound and len(part.pending) >= share:
                    part.fetch(share, self.tail, now)
        return [self._batch(cuts)] if cuts else []

    def _batch(self, cuts: list[tuple[PartitionReader, int]]) -> KafkaBatch:
        runs = [(part.topic, part.take(cut)) for part, cut in sorted(cuts, key=lambda pc: pc[0].rank)]
        order = _order([stamps for _, (_, stamps) in runs], [messages for _, (messages, _) in runs])
        first = min(stamps[0] for _, (_, stamps) in runs)
        position = max(self.position, first << 20)
        batch = KafkaBatch([(topic, messages) for topic, (messages, _) in runs], order, self.lane, position)
        self.position = position + len(batch)
        return batch

    def end_epoch(self, name: str, epoch: int) -> tuple[int, int]:
        """Where partition `name` resumes, and the lane's place, after its `epoch`-th epoch of this run.

        Bytewax gives each partition epochs of its own, and ends them one partition after another:
        another partition may end an epoch before or after the lead ends the same one, while the lead
        emits the records of all of them in its own. So a partition resumes after what the lead released
        up to the end of the lead's epoch of that number: as kept when the lead ended it, or, when it
        has not yet, what is released so far, and the lead then releases nothing more until it ends it
        (unless that partition was read to its end: nothing more of it can go in that epoch).
        (A resumed run built its partitions in the order the store gave them; one that ended its epoch
        before the lead resumed from the epoch before, and the lead's records of that epoch counted twice.)
        """
        if name == self.lead:
            # No partition of a worker ends an epoch while another has not ended the one before (each
            # waits until every output is past it): the others are at most one epoch behind the lead.
            self.epochs_ended, self.held = epoch, False
            for kept, now in [(self.places, self.position)] + [(p.resumes, p.next_offset) for p in self.parts.values()]:
                kept[epoch] = now
                kept.pop(epoch - 2, None)
        elif epoch > self.epochs_ended:
            self.held = not self.parts[name].drained  # one read to its end has nothing more to release
        return self.resume(name, epoch)

    def resume(self, name: str, epoch: int) -> tuple[int, int]:
        """Where partition `name` resumes after its `epoch`-th epoch, and the lane's place (nothing held)."""
        part = self.parts[name]
        if epoch > self.epochs_ended:
            return part.next_offset, self.position
        return part.resumes[epoch], self.places[epoch]

    def resume_at(self, position: int) -> None:
        """Places go on from where the snapshot left them, never below (a resumed run restarted them at 0).

        A record's place is its batch's position plus its index, and a batch starts at its first
        timestamp (shifted) or right after the previous batch, whichever is later. Restarted at 0, the
        first batch after a resume could start below records of the same millisecond placed before the
        snapshot, and a lookup "as of" its place (suggested_events_genre's popular events) read the
        state of before them: a crash-and-resume test lost a customer's suggestions that way.
        """
        self.position = max(self.position, position)

    @property
    def finished(self) -> bool:
        return all(part.drained for part in self.parts.values())

    @property
    def caught_up(self) -> bool:
        """Whether, tailing, every partition is fetched to its end and all of it released: nothing is on the way."""
        return self.tail and all(part.at_end and not part.pending for part in self.parts.values() if not part.closed)

    def caught_up_batch(self) -> KafkaBatch:
        """A batch of no records, at the lane's next place: word that the lane is caught up (`Batch.caught_up`)."""
        return KafkaBatch([], None, self.lane, self.position)


def _before(stamps: list[int], bound: float) -> int:
    """How many of these (sorted) timestamps are before `bound`."""
    return len(stamps) if bound == _FOREVER else bisect.bisect_left(stamps, bound)


def _order(stamps: list[list[int]], messages: list[list[Message]]) -> list[int] | None:
    """How runs of several partitions (in rank order, each in timestamp order) merge by timestamp.

    The i-th record of the merged batch is the `order[i]`-th of the runs one after the other; None
    for a single run. Equal timestamps in different partitions go by offset, then rank (topic,
    partition), as file mode breaks ties by line, then topic. Without such ties, a stable sort of
    positions by timestamp is enough, and four times cheaper than sorting tuples.
    """
    if len(stamps) == 1:
        return None
    joined = list(chain.from_iterable(stamps))
    distinct = len(set(joined))
    if distinct != len(joined) and distinct != sum(len(set(of_run)) for of_run in stamps):
        offsets = chain.from_iterable(map(Message.offset, of_run) for of_run in messages)
        ranks = chain.from_iterable([n] * len(of_run) for n, of_run in enumerate(stamps))
        keyed = sorted(zip(joined, offsets, ranks, count()))  # (timestamp, offset, rank) is unique
        return list(map(_last, keyed))
    return sorted(range(len(joined)), key=joined.__getitem__)


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


class MergedPartition(StatefulSourcePartition[KafkaBatch, Any]):
    """A topic partition as Bytewax sees it: the lead emits the merged batches, the others only keep offsets."""

    def __init__(self, merger: _Merger, part: PartitionReader, position: int = 0):
        self.merger, self.part = merger, part
        merger.add(part)
        merger.resume_at(position)
        self.awake: datetime | None = None
        self.caught_up_said: float | None = None  # when the lead last said its lane is caught up (monotonic)
        self.epochs = 0  # ended in this run

    @property
    def lead(self) -> bool:
        return self.merger.lead == self.part.name

    def next_batch(self) -> list[KafkaBatch]:
        if stopping.requested.is_set() and (self.lead or self._resumes_at_its_end()):
            raise StopIteration()  # Ctrl-C or SIGTERM: the input ends here (utopia.io.stopping)
        if self.lead:
            if self.merger.finished:
                raise StopIteration()
            batches = self.merger.release()
            if batches:
                self.awake = None
                return batches
            self.awake = datetime.now(UTC) + IDLE_POLL
            return self._caught_up()
        if self.part.drained and self._resumes_at_its_end():
            raise StopIteration()
        self.awake = datetime.now(UTC) + IDLE_POLL
        return []

    def _resumes_at_its_end(self) -> bool:
        """Whether this partition's snapshot now is after all it released: its last one may be, it is never updated."""
        return self.merger.resume(self.part.name, self.epochs + 1)[0] == self.part.next_offset

    def _caught_up(self) -> list[KafkaBatch]:
        """While tailing with nothing left to read, a batch that says so (at most once a second).

        An hour of trending-artists that the wall clock closed otherwise waited for the next stream
        to be written (utopia.rules.trending.ArtistNames).
        """
        now = time.monotonic()
        if self.caught_up_said is not None and now - self.caught_up_said < CAUGHT_UP_EVERY_S:
            return []
        if not self.merger.caught_up:
            return []
        self.caught_up_said = now
        return [self.merger.caught_up_batch()]

    def next_awake(self) -> datetime | None:
        return self.awake

    def snapshot(self) -> tuple[int, int]:
        """Where this partition resumes, and the place its lane's records go on from."""
        self.epochs += 1
        return self.merger.end_epoch(self.part.name, self.epochs)

    def close(self) -> None:
        self.part.close()


class WholeInput(MergedPartition):
    """Every partition of the input topics as one Bytewax partition (`UTOPIA_ORDER=global`).

    Bytewax gives each partition to one worker, so one worker reads and merges them all, and the
    records go on in the order one worker of a `partition` run releases them, to keyed steps on
    every worker: N processes apply every record in the order of 1 worker (docs/outputs.md#ordering).
    Its snapshot keeps every topic partition's offset and the lane's place.
    """

    def __init__(self, parts: list[PartitionReader], batch_size: int, tail: bool, max_idle_s: float, position: int = 0):
        merger = _Merger(batch_size, tail, max_idle_s)
        super().__init__(merger, parts[0], position)
        for part in parts[1:]:
            merger.add(part)

    def snapshot(self) -> tuple[dict[str, int], int]:  # type: ignore[override]  # the state of every partition
        """Where each topic partition resumes, and the place the lane's records go on from."""
        return {name: part.next_offset for name, part in self.merger.parts.items()}, self.merger.position

    def close(self) -> None:
        for part in self.merger.parts.values():
            part.close()
