"""The steps every dataflow is made of: read and decode topics, keep state per key, write outputs.

Records travel in batches (a list per source poll), so the Python cost per record stays small:
Bytewax's own per-item overhead is paid once per batch and shard, not once per record. `per_key`
still applies records one at a time in input order to a small pure state object per key, so the
business rules read as if there were no batching.
"""

from __future__ import annotations

import heapq
import os
import pickle
import sys
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from operator import attrgetter, is_not, itemgetter
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import bytewax.operators as op
import msgspec
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.inputs import Source
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import Sink

from utopia.codec import Batch, Decoder, KafkaBatch, RecordBatch, Required, dead_letter
from utopia.config import ConfigError, Topics
from utopia.io import metrics, stopping
from utopia.io.runtime import planned_workers
from utopia.models import Output, Record
from utopia.steps import wire
from utopia.steps.holding import WAITING_LOG, WaitingLog
from utopia.steps.sharding import SHARD_KEYS, SHARD_NAMES, SHARDS, bundle_names, worker_of

R = TypeVar("R")
Out = tuple[str | None, Output]
"""An output record: its Kafka key and its value."""


def recovery_requested(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs with Bytewax recovery (`-r DIR` or BYTEWAX_RECOVERY_DIRECTORY)."""
    argv = sys.argv if argv is None else argv
    env = os.environ if env is None else env
    flags = ("-r", "--recovery-directory")
    return bool(env.get("BYTEWAX_RECOVERY_DIRECTORY")) or any(a in flags or a.startswith("--recovery-directory=") for a in argv)


class FlowIO(Protocol):
    """Where a dataflow's named sources and sinks come from: Kafka, files, or tests."""

    topics: Topics
    changelog: timedelta
    """How long a changelog update may wait to be superseded by a newer one for the same key."""
    zone: tzinfo
    """Where event dates without a zone were written."""

    def source(self, dataflow: str, topics: list[str]) -> Source[RecordBatch | KafkaBatch]:
        """A source of batches of raw records from these (full) input topic names."""
        ...

    def sink(self, dataflow: str, output: str) -> Sink[Out]:
        """A sink for the output called `output` (without prefix and suffix)."""
        ...


class KeyState(Protocol[R]):
    """The state of one key feeding an alert output: applies one record, returns the alerts it causes."""

    def apply(self, record: R) -> Iterable[Out]: ...


class ChangelogState(Protocol[R]):
    """The state of one key feeding a changelog: applies one record, says whether its value changed."""

    def apply(self, record: R) -> bool: ...

    def value(self) -> Out:
        """The key's current output record, built only when it is flushed."""
        ...


@operator
def read(step_id: str, flow: Dataflow, io: FlowIO, reads: Mapping[type[Record], Sequence[Required]],
         caught_up: bool = False) -> Stream[Batch]:
    """Read and decode the input topics of `reads` (record type -> required foreign keys).

    Bad records go to the dead-letter topic; the stream carries batches of good ones in input order,
    and with `caught_up` also the empty batches that say a lane has read all there is for now
    (`Batch.caught_up`), for a dataflow whose outputs would otherwise wait for the next record.
    """
    decoder = Decoder(flow.flow_id, io.topics, reads, io.zone)
    raw = op.input("consume", flow, io.source(flow.flow_id, decoder.topics))

    read_count, dead_count = metrics.RECORDS_READ.labels(flow.flow_id), metrics.DEAD_LETTERS.labels(flow.flow_id)

    def decode(batch: RecordBatch | KafkaBatch) -> Batch:
        decoded = decoder.decode(batch)
        stopping.count(len(batch), len(decoded.dead))
        read_count.inc(len(batch))
        if decoded.dead:
            dead_count.inc(len(decoded.dead))
        return decoded

    decoded = op.map("decode", raw, decode)
    sink = io.sink(flow.flow_id, "dead-letters")
    items_of = _items_of(sink)
    op.output("dead_letters", op.flat_map("bad_records", decoded, lambda batch: items_of(batch.dead)), sink)
    return op.filter("good_records", decoded, _has_records_or_is_caught_up if caught_up else _has_records)


def _has_records(batch: Batch) -> bool:
    return bool(batch.records)


def _has_records_or_is_caught_up(batch: Batch) -> bool:
    return bool(batch.records) or batch.caught_up


@operator
def write(step_id: str, up: Stream[list[Out]], io: FlowIO, output: str) -> None:
    """Write batches of output records to the output called `output`."""
    written = metrics.RECORDS_WRITTEN.labels(up.flow().flow_id, output)
    sink = io.sink(up.flow().flow_id, output)
    items_of = _items_of(sink)

    def each(batch: list[Out]) -> list:
        written.inc(len(batch))
        return items_of(batch)

    op.output("produce", op.flat_map("each", up, each), sink)


def _items_of(sink: Sink) -> Callable[[list[Out]], list]:
    """How a sink takes a batch of output records: one item per record, or the whole batch as one item.

    The exactly-once sink (utopia.io.transactions) takes whole batches, keyed by the worker that made them.
    """
    return getattr(sink, "items_of", _each)


def _each(batch: list[Out]) -> list[Out]:
    return batch


@operator
def rekey(step_id: str, up: Stream[list[Out]], key_of: Callable[[Any], str]) -> Stream[list[Out]]:
    """The items of a keyed step, keyed anew by `key_of(item)` for another (how far it has sent is left out)."""

    def keyed(batch: list[Out]) -> list[Out]:
        return [(key_of(item), item) for key, item in batch if key is not None]

    return op.map("key_anew", up, keyed)


V = TypeVar("V")


@wire.wrapper
class Placed(msgspec.Struct, Generic[V], frozen=True, gc=False, array_like=True):
    """A value with its place in the input: the lane that read it and its position there."""

    lane: int
    position: int
    value: V


class Lookup(msgspec.Struct, frozen=True, gc=False):
    """An item that reads another keyed step's state as of its place in the input (docs/outputs.md#ordering).

    It reaches that step by another path than the records that change the state, so it may arrive
    before records that came earlier in the input, or after later ones. The step holds it until its
    lane has been read past `position` and reads the state as it was at `position`.
    """

    lane: int
    position: int


@wire.wrapper
class Sequenced(Placed[V], Generic[V], frozen=True, gc=False, array_like=True):
    """An item of one keyed step for another, at its place in the input: `position`, then `sub`.

    Items that one record released together (tickets their event released, at its position) go in
    the order of `sub`, such as each one's own position; a step's own records go first at their
    position (docs/outputs.md#ordering).
    """

    sub: int


@operator
def everywhere(step_id: str, up: Stream[Batch], kind: type[R], learn: Callable[[list[Placed[R]]], None]) -> None:
    """Send every record of `kind`, placed, to every worker, where `learn` takes them (in input order per lane).

    For a table that each process keeps of facts that records of other lanes need, such as where
    each event takes place (utopia.rules.venues.KnownVenues). "Every worker" is those that
    `plan_workers` counts: all of them when they are in several processes, one when they are the
    threads of one process, which share its table. What is learned is a shortcut, never the only
    way to a result: it is not in recovery snapshots, and a resumed run that has not learned a fact
    yet takes the long way.
    """
    names = bundle_names(planned_workers())
    wanted = (kind,)

    def to_every_worker(batch: Batch) -> list[tuple[str, list[Placed[R]]]]:
        lane, position = batch.lane, batch.position
        placed = [Placed(lane, position + i, record)
                  for _, records, indices in batch.runs(wanted) for i, record in zip(indices, records)]
        return [(name, placed) for name in names] if placed else []

    sent = op.flat_map("to_every_worker", up, to_every_worker)
    op.stateful_batch("learn", sent, lambda _: _Learner(learn))


class _Learner(StatefulBatchLogic):
    """A worker's end of `everywhere`: hands what arrives to `learn`, and keeps nothing of its own."""

    def __init__(self, learn: Callable[[list], None]):
        self.learn = learn

    def on_batch(self, values: list[list]) -> tuple[list, bool]:
        for placed in values:
            self.learn(placed)
        return [], False

    def snapshot(self) -> None:
        return None


@operator
def shortcut(step_id: str, up: Stream[Batch], kind: type[R],
             replace: Callable[[list[R], int, Sequence[int]], list[Record]]) -> Stream[Batch]:
    """Batches with some records of `kind` replaced by what `replace` gives for them.

    A record that a keyed step would only pass on, once it knows something, can go straight on as
    another record where that is already known (utopia.rules.venues.KnownVenues). `replace(records,
    position, indices)` gets a run of them, the batch's position and theirs in it, and gives each
    record to go instead, or the same record to keep it. Other steps read the batch as it was read.
    """
    wanted = (kind,)

    def replaced(batch: Batch) -> Batch:
        records = batch.records
        for _, run, indices in batch.runs(wanted):
            new = replace(run, batch.position, indices)
            if not any(map(is_not, new, run)):
                continue
            if len(new) == len(records):  # the whole batch is of this kind
                records = new
            else:
                if records is batch.records:
                    records = list(records)
                deque(map(records.__setitem__, indices, new), maxlen=0)  # in a C loop
        return batch if records is batch.records else batch.with_records(records)

    return op.map("replace", up, replaced)


class _Mark(NamedTuple):
    """To every shard of a step: everything of `lane` before `end` has been sent to you (you are `shard`)."""

    lane: int
    end: int
    shard: int = 0


class _Front(NamedTuple):
    """From shard `shard` of a step to every shard of the next: all I send for `lane` before `end` has been sent."""

    lane: int
    end: int
    shard: int


_NO_CACHE = timedelta(0)
"""A changelog flush interval of 0: no record cache, every change of a key's value is written, in input order, as
Kafka Streams does with `statestore.cache.max.bytes=0` (docs/outputs.md#outputs)."""


class _Unfinished(list):
    """Dead letters of records that still waited for a reference at the end of the input."""


class _ShardLogic(StatefulBatchLogic):
    """All the keys of one shard: a dict of per-key state objects, fed records in order.

    Alert outputs leave with the batch that caused them. For a changelog, a changed key is only
    marked; its latest value is built and sent once per flush interval, as Kafka Streams' record
    cache does (docs/outputs.md#outputs): most updates of a busy key never cost an output record.
    With an interval of 0 there is no cache: each change leaves with the batch that caused it.
    """

    snapshots = recovery_requested()

    def __init__(self, snapshot: bytes | None, step: _Step):
        self.states: dict[str, Any] = {}
        self.changed: dict[str, None] = {}  # an ordered set of the keys to flush
        if snapshot is not None:
            shards, state = _shards_and_state(pickle.loads(snapshot))
            if shards != SHARDS:  # its keys belong to other shards now: their states would never be found
                raise ConfigError(f"the recovery store was written with UTOPIA_SHARDS={shards} and this run has "
                                  f"{SHARDS}: resume with {shards}, or start with a new recovery store")
            self._restore(*state)
        self.step = step
        self.flush_at: datetime | None = None
        self.recheck_at = None if step.recheck is None else datetime.now(UTC) + step.recheck

    def on_batch(self, batches: list[list[tuple[str, Any]]]) -> tuple[list[list[Out]], bool]:
        states, new, changed, alerts = self.states, self.step.new, self.changed, self.step.changelog is None
        every = self.step.changelog == _NO_CACHE
        outputs: list[Out] = []
        marks: dict[int, _Mark] = {}
        for batch in batches:
            for key, record in batch:
                if key is None:  # how far the input has been sent here (to a step that tells)
                    marks[record.lane] = record
                    continue
                state = states.get(key)
                if state is None:
                    state = states[key] = new(key)
                applied = state.apply(record)
                if alerts:
                    outputs.extend(applied)
                elif applied:
                    if every:
                        outputs.append(state.value())
                    else:
                        changed[key] = None
        if marks:  # everything this shard sends for those records has just been sent
            outputs.extend((None, _Front(mark.lane, mark.end, mark.shard)) for mark in marks.values())
        return self._done(outputs)

    def _done(self, outputs: list[Out]) -> tuple[list[list[Out]], bool]:
        if self.changed and self.flush_at is None:
            self.flush_at = datetime.now(UTC) + self.step.changelog
        if self.step.waiting_log is not None:
            self.step.waiting_log.tick()
        return ([outputs] if outputs else []), False

    def on_notify(self) -> tuple[list[list[Out]], bool]:
        now = datetime.now(UTC)
        if self.recheck_at is not None and self.recheck_at <= now:
            self.recheck_at = now + self.step.recheck
            self.changed.update((key, None) for key, state in self.states.items() if state.recheck())
            if self.changed and self.flush_at is None:
                self.flush_at = now + self.step.changelog
        if self.flush_at is None or self.flush_at > now:  # only a recheck was due
            return [], False
        return self.flush(), False

    def on_eof(self) -> tuple[list[list[Out]], bool]:
        if self.recheck_at is not None:  # values that follow the clock: every key once more, as of the end
            self.changed.update(dict.fromkeys(self.states))
            self.recheck_at = None
        return self.flush() + self.finished() + self.unfinished(), False

    def notify_at(self) -> datetime | None:
        if self.recheck_at is None or (self.flush_at is not None and self.flush_at < self.recheck_at):
            return self.flush_at
        return self.recheck_at

    def flush(self) -> list[list[Out]]:
        states = self.states
        outputs = [states[key].value() for key in self.changed]
        self.changed, self.flush_at = {}, None
        return [outputs] if outputs else []

    def finished(self) -> list[list[Out]]:
        """What states that wait for something say at the end of the input (`at_end`); nothing at a stop."""
        if not self.step.ends or stopping.requested.is_set():
            return []
        outputs = [out for state in self.states.values() for out in state.at_end()]
        return [outputs] if outputs else []

    def unfinished(self) -> list[list[Out]]:
        """What still waits at the end of the input, as dead letters (docs/outputs.md#waiting).

        At a stop (utopia.io.stopping) the input has not ended: what waits stays, and is read again on restart.
        """
        if not self.step.holds:
            return []
        if stopping.requested.is_set():
            return []
        dataflow = self.step.dataflow
        letters = _Unfinished(dead_letter(dataflow, raw, reason)
                              for state in self.states.values() for raw, reason in state.unfinished())
        metrics.DEAD_LETTERS.labels(dataflow).inc(len(letters))
        return [letters] if letters else []

    def snapshot(self) -> bytes | None:
        # Bytewax asks for a snapshot of every touched key at each epoch end even without recovery
        # (src/operators.rs, v0.21.1), and a shard holds thousands of keys: copy only when a
        # recovery store will keep it. Pickle is the cheapest deep copy of a dict of small objects;
        # unflushed keys go along, so no changelog update is lost on resume.
        if not self.snapshots:
            return None
        return pickle.dumps((SHARDS, self._snapshot_state()), pickle.HIGHEST_PROTOCOL)

    def _snapshot_state(self) -> tuple:
        return self.states, self.changed

    def _restore(self, states: dict[str, Any], changed: dict[str, None]) -> None:
        self.states, self.changed = states, changed


def _shards_and_state(snapshot: tuple) -> tuple[int, tuple]:
    """A shard's snapshot: the shard count it was taken under, and the state's own tuple."""
    if len(snapshot) != 2 or type(snapshot[0]) is not int:
        raise ConfigError("the recovery store was written by an earlier version, without its shard count: "
                          "start with a new recovery store")
    return snapshot


class _JoinLogic(_ShardLogic):
    """A shard that also answers lookups: each one once its lane's records before it have all arrived.

    The state answers `read(lookup)` as of the lookup's position, so a record that came later in
    the input but reached this step first does not show (docs/outputs.md#ordering).
    """

    def __init__(self, snapshot: bytes | None, step: _Step):
        self.read_up_to: dict[int, int] = {}  # lane -> end of the last mark
        self.pending: list[tuple[str, Lookup]] = []
        super().__init__(snapshot, step)

    def _restore(self, states: dict[str, Any], changed: dict[str, None],
                 read_up_to: dict[int, int] | None = None, pending: list | None = None) -> None:
        super()._restore(states, changed)
        self.read_up_to, self.pending = read_up_to or {}, pending or []

    def on_batch(self, batches: list[list[tuple[str | None, Any]]]) -> tuple[list[list[Out]], bool]:
        states, new, pending, read_up_to = self.states, self.step.new, self.pending, self.read_up_to
        outputs: list[Out] = []
        for batch in batches:
            for key, item in batch:
                if key is None:
                    read_up_to[item.lane] = max(read_up_to.get(item.lane, 0), item.end)
                elif isinstance(item, Lookup):
                    pending.append((key, item))
                else:
                    state = states.get(key)
                    if state is None:
                        state = states[key] = new(key)
                    outputs.extend(state.apply(item))
        if pending:
            self.pending = []
            for key, lookup in pending:
                if lookup.position < read_up_to.get(lookup.lane, 0):
                    outputs.extend(self._read(key, lookup))
                else:
                    self.pending.append((key, lookup))
        return self._done(outputs)

    def on_eof(self) -> tuple[list[list[Out]], bool]:
        outputs = [out for key, lookup in self.pending for out in self._read(key, lookup)]
        self.pending = []
        return ([outputs] if outputs else []) + super().on_eof()[0], False

    def _read(self, key: str, lookup: Lookup) -> Iterable[Out]:
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = self.step.new(key)
        return state.read(lookup)

    def _snapshot_state(self) -> tuple:
        return self.states, self.changed, self.read_up_to, self.pending


class _OrderedLogic(_ShardLogic):
    """A shard that applies its own records and the items of another step together, in input order.

    The items (`Sequenced`) come by another path, from every shard of a step that tells how far it
    has sent (`_Front`), so they may arrive before records that came earlier in the input, or after
    later ones. Each lane's records and items wait in a queue by (position, sub) until this shard
    has its own input and every upstream shard's past them, then are applied in that order: the
    state sees exactly the sequence one process reading the input would (docs/outputs.md#ordering).
    """

    def __init__(self, snapshot: bytes | None, step: _Step):
        self.read_up_to: dict[int, int] = {}  # lane -> end of this step's own input sent here
        self.fronts: dict[int, list[int]] = {}  # lane -> per upstream shard, the end it has sent
        self.queues: dict[int, list[tuple]] = {}  # lane -> heap of (position, sub, arrival, key, item)
        self.arrivals = 0
        super().__init__(snapshot, step)

    def _restore(self, states: dict[str, Any], changed: dict[str, None], read_up_to: dict | None = None,
                 fronts: dict | None = None, queues: dict | None = None, arrivals: int = 0) -> None:
        super()._restore(states, changed)
        self.read_up_to, self.fronts, self.queues, self.arrivals = read_up_to or {}, fronts or {}, queues or {}, arrivals

    def on_batch(self, batches: list[list[tuple[str | None, Any]]]) -> tuple[list[list[Out]], bool]:
        read_up_to, fronts, queues = self.read_up_to, self.fronts, self.queues
        arrival = self.arrivals
        for batch in batches:
            for key, item in batch:
                if key is not None:
                    sub = item.sub if isinstance(item, Sequenced) else -1
                    queue = queues.get(item.lane)
                    if queue is None:
                        queue = queues[item.lane] = []
                    heapq.heappush(queue, (item.position, sub, arrival, key, item))
                    arrival += 1
                elif type(item) is _Front:
                    ends = fronts.get(item.lane)
                    if ends is None:
                        ends = fronts[item.lane] = [0] * SHARDS
                    ends[item.shard] = max(ends[item.shard], item.end)
                else:
                    read_up_to[item.lane] = max(read_up_to.get(item.lane, 0), item.end)
        self.arrivals = arrival
        outputs: list[Out] = []
        for lane, queue in queues.items():
            ends = fronts.get(lane)
            safe = min(read_up_to.get(lane, 0), min(ends)) if ends else 0
            while queue and queue[0][0] < safe:
                _, _, _, key, item = heapq.heappop(queue)
                self._apply(key, item, outputs)
        return self._done(outputs)

    def on_eof(self) -> tuple[list[list[Out]], bool]:
        outputs: list[Out] = []
        waiting = sorted(entry for queue in self.queues.values() for entry in queue)
        self.queues = {}
        for _, _, _, key, item in waiting:
            self._apply(key, item, outputs)
        return ([outputs] if outputs else []) + super().on_eof()[0], False

    def _apply(self, key: str, item: Any, outputs: list[Out]) -> None:
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = self.step.new(key)
        applied = state.apply(item)
        if self.step.changelog is None:
            outputs.extend(applied)
        elif applied:
            if self.step.changelog == _NO_CACHE:
                outputs.append(state.value())
            else:
                self.changed[key] = None

    def _snapshot_state(self) -> tuple:
        return self.states, self.changed, self.read_up_to, self.fronts, self.queues, self.arrivals


class _Step(NamedTuple):
    """What every shard of one keyed step shares."""

    dataflow: str
    new: Callable[[str], Any]
    changelog: timedelta | None
    holds: tuple[type, ...]
    waiting_log: WaitingLog | None
    recheck: timedelta | None = None
    ends: bool = False
    """Whether the states have something to say at the end of the input (`at_end()`)."""


KeyFields = Mapping[type, str | Callable[[Any], str]]
"""Which field holds a record's key in a keyed step, per record type (the exact type), or what gives it."""


@operator
def per_key(
    step_id: str,
    up: Stream[Batch],
    key: KeyFields,
    new: Callable[[str], KeyState[Any] | ChangelogState[Any]],
    changelog: timedelta | None = None,
    value: Callable[[Any], Any] | None = None,
    value_of_runs: Mapping[type, Callable[[list], list]] | None = None,
    dead_letters: FlowIO | None = None,
    also: Stream[list[Out]] | None = None,
    lookups: Stream[list[tuple[str, Lookup]]] | None = None,
    lookups_from: tuple[type, ...] = (),
    broadcast: tuple[type, ...] = (),
    recheck: timedelta | None = None,
    tells: bool = False,
    in_order: Stream[list[Out]] | None = None,
) -> Stream[list[Out]]:
    """Apply each record, in input order, to the state of its key (`new(key)` makes a fresh one).

    Records of a type `key` does not name, or whose key is null, skip this step. `value` picks what
    of a record the state needs (default: the whole record): only that travels to the worker that
    owns the key, and with several processes it is encoded on the way, so small values keep the
    exchange cheap. `value_of_runs` does the same, per record type, for a whole run of records in
    one call, where a Python call per record would cost more than the rest of the record's way;
    the types it does not name get `value`. With a `changelog` flush interval, the states are
    `ChangelogState`s and each changed key's value is sent at most once per interval (and at the end
    of a finite input); without, they are `KeyState`s whose alerts all leave at once.

    What the state class declares shapes what it gets (and an `at_end()` method, if it has one, is
    called once at the end of a finite input, for what it still has to say):
    - `placed`: record types whose values come as `Placed(lane, position, value)`;
    - `holds`: record types that may wait for another record; they come as `Sourced` pairs `(raw, record)`
      (placed too: `Placed(lane, position, (raw, record))`)
      and what still waits at the end of a finite input goes to the dead letters of `dead_letters`
      (the state says what with `unfinished()`).
    - `waits`: in words, which records wait in the state and for what ("tickets wait for their
      event"); the pictures of docs/dataflows.md mark the step with it (utopia.tools.topology).

    `lookups` are items from another keyed step that read this step's state as of their place in
    the input (`state.read(lookup)`); `lookups_from` are the record types that cause them upstream.

    With `recheck`, changelog values also change as time passes, with no record (global_totals'
    events that take place): every `recheck` each shard asks its states `recheck()`, whether the
    clock alone changed their value, and at the end of a finite input every key is sent once more.

    `in_order` are `Sequenced` items of another keyed step, one that `tells` how far it has sent:
    they are applied together with this step's own records (all `placed`) in input order, each
    once nothing that comes before it can still arrive. Such an upstream step sends its alerts
    with the batch that caused them, so it has no `changelog`.
    """
    flow_id = up.flow().flow_id
    placed: tuple[type, ...] = tuple(getattr(new, "placed", ()))
    holds: tuple[type, ...] = tuple(getattr(new, "holds", ()))
    if holds and dead_letters is None:
        raise TypeError(f"{step_id}: {getattr(new, '__name__', new)} holds records: pass dead_letters=io")
    getters = {kind: field if callable(field) else attrgetter(field) for kind, field in key.items()}
    if tells and changelog is not None:
        raise TypeError(f"{step_id}: a step that tells how far it has sent sends alerts, not a changelog")
    if in_order is not None and lookups is not None:
        raise TypeError(f"{step_id}: a step takes another step's items in order or answers lookups, not both")
    marks = frozenset(lookups_from)
    everywhere = frozenset(broadcast)
    wanted = frozenset(getters) | marks | everywhere
    ordered = in_order is not None

    def by_shard(batch: Batch | list[tuple[str, Lookup]]) -> list[tuple[str, Any]]:
        shards: list[list[tuple[str | None, Any]]] = [[] for _ in range(SHARDS)]
        if type(batch) is not Batch:  # from another keyed step: (key, value) pairs
            for pair in batch:
                if pair[0] is None:  # how far that step has sent: for a step that takes its items in order
                    if ordered:
                        for pairs in shards:
                            pairs.append(pair)
                    continue
                shards[zlib.crc32(pair[0].encode()) % SHARDS].append(pair)
            return send(shards)
        marked = False
        for kind, records, indices in batch.runs(wanted):
            if kind in everywhere:
                values = _values(batch, kind, records, indices)
                for n, pairs in enumerate(shards):
                    pairs.extend((SHARD_KEYS[n], v) for v in values)
            elif kind in getters:
                keys, values = _keyed(batch, kind, records, indices)
                # A key's shard must be the same in every process: crc32, not `hash` (salted per process).
                for k, v, crc in zip(keys, values, map(zlib.crc32, map(str.encode, keys))):
                    shards[crc % SHARDS].append((k, v))
            marked = marked or kind in marks
        if tells:
            for n, pairs in enumerate(shards):
                pairs.append((None, _Mark(batch.lane, batch.end, n)))
        elif marked or ordered:
            mark = _Mark(batch.lane, batch.end)
            for pairs in shards:
                pairs.append((None, mark))
        return send(shards)

    def _keyed(batch: Batch, kind: type, records: list, indices: Sequence[int]) -> tuple[list[str], Iterable[Any]]:
        """The keys and values of a run of records of one type, in C loops where it can."""
        keys, values = list(map(getters[kind], records)), _values(batch, kind, records, indices)
        if None in keys:
            values = [v for k, v in zip(keys, values) if k is not None]
            keys = [k for k in keys if k is not None]
        return keys, values

    def _values(batch: Batch, kind: type, records: list, indices: Sequence[int]) -> list[Any]:
        """What of a run of records of one type reaches the states: see `placed` and `holds`."""
        of_run = value_of_runs.get(kind) if value_of_runs else None
        values = of_run(records) if of_run is not None else records if value is None else list(map(value, records))
        if kind in holds:
            values = list(zip(batch.raw(indices), values))
        if kind in placed:
            lane, position = batch.lane, batch.position
            values = [Placed(lane, position + i, v) for i, v in zip(indices, values)]
        return values

    step = _Step(flow_id, new, changelog, holds, WAITING_LOG if holds else None, recheck,
                 hasattr(new, "at_end"))
    logic = _OrderedLogic if ordered else _ShardLogic if lookups is None else _JoinLogic
    others = [stream for stream in (also, lookups, in_order) if stream is not None]
    inputs = op.merge("with_items_of_other_steps", up, *others) if others else up
    workers = planned_workers()
    send = _by_worker(workers) if workers > 1 else _each_shard
    sharded = op.flat_map("shard", inputs, by_shard)
    if workers == 1:
        applied = op.stateful_batch("apply", sharded, lambda snap: logic(snap, step))
    elif _ShardLogic.snapshots:  # bundles to workers, then each shard's parcel on its own, its state kept by shard
        delivered = op.stateful_batch("deliver_to_each_worker", sharded, _Courier)
        sharded = op.flat_map_batch("each_shard", delivered, _item_values)
        applied = op.stateful_batch("apply", sharded, lambda snap: logic(snap, step))
    else:  # bundles to workers, each applied there by the worker's shards
        shards_of_worker = partial(_WorkerShards, partial(logic, None, step), step)
        applied = op.stateful_batch("apply_on_each_worker", sharded, lambda _: shards_of_worker())
    outputs = op.flat_map_batch("outputs", applied, _item_values)
    if not holds:
        return outputs
    waited = op.branch("waited_until_the_end", outputs, _is_unfinished)
    sink = dead_letters.sink(flow_id, "dead-letters")
    op.output("dead_letters", op.flat_map("each_dead_letter", waited.trues, _items_of(sink)), sink)
    return waited.falses


def _each_shard(shards: list[list[tuple[str | None, Any]]]) -> list[tuple[str, list[tuple[str | None, Any]]]]:
    """Each shard's parcel as a Bytewax item, keyed by the shard's name (one worker, or several in one process)."""
    return [(SHARD_NAMES[n], pairs) for n, pairs in enumerate(shards) if pairs]


def _by_worker(workers: int) -> Callable[[list[list[tuple[str | None, Any]]]], list[tuple[str, _Bundle]]]:
    """For `workers` workers: the shards' parcels in one bundle per worker that owns some, keyed to reach it.

    A batch splits into up to one parcel per shard, and with several processes about half of them
    go to another one. Each crossing costs Bytewax a pickle, a message and an unpickle whatever its
    size, and parcels are small (7 records on average on sold_out): bundled, a batch crosses once per
    worker and step. A shard's parcels always go in the bundle of the same worker, which applies
    them (`_WorkerShards`); with recovery its `deliver_to_each_worker` step hands each parcel on,
    keyed by its shard, and Bytewax keeps it on that worker: a shard's worker is its bundle's.
    """
    names = bundle_names(workers)
    owned = [[n for n in range(SHARDS) if worker_of(SHARD_NAMES[n], workers) == w] for w in range(workers)]
    shard_names = [[SHARD_NAMES[n] for n in shards] for shards in owned]

    def bundles(shards: list[list[tuple[str | None, Any]]]) -> list[tuple[str, _Bundle]]:
        sent = []
        for name, indices, of_worker in zip(names, owned, shard_names):
            # (shard name, pairs) of the worker's shards that have something to send, in C loops
            bundle = _Bundle(filter(_second, zip(of_worker, map(shards.__getitem__, indices))))
            if bundle:
                sent.append((name, bundle))
        return sent

    return bundles


class _Bundle(list):
    """The parcels `(shard name, pairs)` of one batch for one worker: encoded once if it goes to another process.

    Bytewax pickles whatever crosses processes, and timely serializes a message twice on the way
    out (once to learn its length, once to write it). A bundle pickles as `utopia.steps.wire`'s
    encoding of its parcels, made once, and arrives as a plain list; within a process it is never
    encoded at all.
    """

    __slots__ = ("_encoded",)

    def __reduce__(self) -> tuple[Callable, tuple[bytes]]:
        try:
            encoded = self._encoded
        except AttributeError:
            encoded = self._encoded = wire.encode(self)
        return wire.decode, (encoded,)


class _Courier(StatefulBatchLogic):
    """A worker's bundles of one step, handed on parcel by parcel, each keyed by its shard; it keeps nothing."""

    def __init__(self, snapshot: None):
        pass

    def on_batch(self, bundles: list[list[tuple[str, list]]]) -> tuple[list[tuple[str, list]], bool]:
        return [parcel for bundle in bundles for parcel in bundle], False

    def snapshot(self) -> None:
        return None


class _WorkerShards(StatefulBatchLogic):
    """The shards of one keyed step that live on one worker, fed whole bundles (a run without recovery).

    Bytewax keeps state per key, and the key of a bundle is its worker, so here the worker's
    shards are one state: no step hands the parcels on, and a batch costs one Bytewax item and one
    exchange per worker and step, not two. With recovery the states stay keyed by shard (the
    `deliver_to_each_worker` step), so that a recovery store resumes under any worker count.
    """

    def __init__(self, new_shard: Callable[[], _ShardLogic], step: _Step):
        self.new_shard = new_shard
        self.shards: dict[str, _ShardLogic] = {}
        self.timed = step.changelog is not None or step.recheck is not None
        """Whether a shard ever asks to be woken: an alert step's never does, and Bytewax asks after every batch."""

    def on_batch(self, bundles: list[list[tuple[str, list]]]) -> tuple[list[list[Out]], bool]:
        parcels: dict[str, list[list]] = {}
        for bundle in bundles:
            for name, pairs in bundle:
                batches = parcels.get(name)
                if batches is None:
                    parcels[name] = [pairs]
                else:
                    batches.append(pairs)
        shards, outputs = self.shards, []
        for name, batches in parcels.items():
            shard = shards.get(name)
            if shard is None:
                shard = shards[name] = self.new_shard()
            outputs.extend(shard.on_batch(batches)[0])
        return outputs, False

    def on_notify(self) -> tuple[list[list[Out]], bool]:
        now = datetime.now(UTC)
        outputs = []
        for shard in self.shards.values():
            due = shard.notify_at()
            if due is not None and due <= now:
                outputs.extend(shard.on_notify()[0])
        return outputs, False

    def on_eof(self) -> tuple[list[list[Out]], bool]:
        return [out for shard in self.shards.values() for out in shard.on_eof()[0]], False

    def notify_at(self) -> datetime | None:
        if not self.timed:
            return None
        return min(filter(None, (shard.notify_at() for shard in self.shards.values())), default=None)

    def snapshot(self) -> None:
        return None


def _is_unfinished(batch: list[Out]) -> bool:
    return type(batch) is _Unfinished


_second = itemgetter(1)
_item_values = partial(map, _second)
"""The values of a batch of a keyed step's `(key, value)` items, in one C loop (`op.map` calls Python per item)."""
