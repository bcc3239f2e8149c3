"""What the shards of a keyed step do with what reaches them: the engine under every keyed step.

A shard is a dict of per-key states (utopia.steps.state), fed records one at a time in input
order; a Bytewax `stateful_batch` step keeps the shards, keyed by shard name or by worker
(utopia.steps.engine routes to them). `ShardLogic` applies records and sends alerts or a changelog;
`JoinLogic` also answers lookups as of their place in the input; `OrderedLogic` applies another
step's items together with its own records, in input order.
"""

from __future__ import annotations

import heapq
import os
import pickle
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

from bytewax.operators import StatefulBatchLogic

from utopia.codec import dead_letter
from utopia.config import ConfigError
from utopia.io import metrics, stopping
from utopia.steps.holding import WaitingLog
from utopia.steps.items import Lookup, Out, Sequenced
from utopia.steps.sharding import SHARDS
from utopia.steps.snapshots import Buckets, restored


def recovery_requested(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs with Bytewax recovery (`-r DIR` or BYTEWAX_RECOVERY_DIRECTORY)."""
    argv = sys.argv if argv is None else argv
    env = os.environ if env is None else env
    flags = ("-r", "--recovery-directory")
    return bool(env.get("BYTEWAX_RECOVERY_DIRECTORY")) or any(
        a in flags or a.startswith("--recovery-directory=") for a in argv
    )


class KeyedStep(NamedTuple):
    """What every shard of one keyed step shares."""

    dataflow: str
    new: Callable[[str], Any]
    changelog: timedelta | None
    holds: tuple[type, ...]
    waiting_log: WaitingLog | None
    recheck: timedelta | None = None
    ends: bool = False
    """Whether the states have something to say at the end of the input (`at_end()`)."""


class Mark(NamedTuple):
    """To every shard of a step: everything of `lane` before `end` has been sent to you (you are `shard`)."""

    lane: int
    end: int
    shard: int = 0


class Front(NamedTuple):
    """From shard `shard` of a step to every shard of the next: all I send for `lane` before `end` has been sent."""

    lane: int
    end: int
    shard: int


NO_CACHE = timedelta(0)
"""A changelog flush interval of 0: no record cache, every change of a key's value is written, in input order, as
Kafka Streams does with `statestore.cache.max.bytes=0` (docs/outputs.md#outputs)."""


class Unfinished(list):
    """Dead letters of records that still waited for a reference at the end of the input."""


class ShardLogic(StatefulBatchLogic):
    """All the keys of one shard: a dict of per-key state objects, fed records in order.

    Alert outputs leave with the batch that caused them. For a changelog, a changed key is only
    marked; its latest value is built and sent once per flush interval, as Kafka Streams' record
    cache does (docs/outputs.md#outputs): most updates of a busy key never cost an output record.
    With an interval of 0 there is no cache: each change leaves with the batch that caused it.
    """

    snapshots = recovery_requested()

    def __init__(self, snapshot: bytes | None, step: KeyedStep):
        self.states: dict[str, Any] = {}
        self.changed: dict[str, None] = {}  # an ordered set of the keys to flush
        self.buckets = Buckets() if self.snapshots else None
        """The states' snapshot, kept by bucket of keys: with recovery only (none is taken without)."""
        if snapshot is not None:
            shards, state = _shards_and_state(pickle.loads(snapshot))
            if shards != SHARDS:  # its keys belong to other shards now: their states would never be found
                raise ConfigError(
                    f"the recovery store was written with UTOPIA_SHARDS={shards} and this run has "
                    f"{SHARDS}: resume with {shards}, or start with a new recovery store"
                )
            self._restore(restored(state[0]), *state[1:])
        self.step = step
        self.flush_every = step.changelog or NO_CACHE
        self.flush_at: datetime | None = None
        self.recheck_at = None if step.recheck is None else datetime.now(UTC) + step.recheck

    def on_batch(self, batches: list[list[tuple[str | None, Any]]]) -> tuple[list[list[Out]], bool]:
        states, new, changed, alerts = self.states, self.step.new, self.changed, self.step.changelog is None
        every = self.step.changelog == NO_CACHE
        outputs: list[Any] = []  # alerts, and `Front`s for a step that tells
        marks: dict[int, Mark] = {}
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
            outputs.extend((None, Front(mark.lane, mark.end, mark.shard)) for mark in marks.values())
        return self._done(outputs, batches)

    def _done(self, outputs: list[Out], batches: list[list[tuple[str | None, Any]]]) -> tuple[list[list[Out]], bool]:
        if self.buckets is not None:  # the keys of these batches, a batch in one C loop: their states may have changed
            touched = self.buckets.touched
            for batch in batches:
                touched.update(map(_key, batch))
        if self.changed and self.flush_at is None:
            self.flush_at = datetime.now(UTC) + self.flush_every
        if self.step.waiting_log is not None:
            self.step.waiting_log.tick()
        return ([outputs] if outputs else []), False

    def on_notify(self) -> tuple[list[list[Out]], bool]:
        now = datetime.now(UTC)
        recheck = self.step.recheck
        if recheck is not None and self.recheck_at is not None and self.recheck_at <= now:
            self.recheck_at = now + recheck
            rechecked = [key for key, state in self.states.items() if state.recheck()]
            self.changed.update(dict.fromkeys(rechecked))
            self._touch(rechecked)
            if self.changed and self.flush_at is None:
                self.flush_at = now + self.flush_every
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
        self._touch(self.changed)  # building a value may update the state (what it was built from)
        self.changed, self.flush_at = {}, None
        return [outputs] if outputs else []

    def finished(self) -> list[list[Out]]:
        """What states that wait for something say at the end of the input (`at_end`); nothing at a stop."""
        if not self.step.ends or stopping.requested.is_set():
            return []
        outputs = [out for state in self.states.values() for out in state.at_end()]
        self._touch(self.states)  # what a state says at the end may change it
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
        letters = Unfinished(
            dead_letter(dataflow, raw, reason) for state in self.states.values() for raw, reason in state.unfinished()
        )
        self._touch(self.states)  # what a state gives up at the end may change it
        metrics.DEAD_LETTERS.labels(dataflow).inc(len(letters))
        return [letters] if letters else []

    def snapshot(self) -> bytes | None:
        # Bytewax asks for a snapshot of every touched key at each epoch end even without recovery
        # (src/operators.rs, v0.21.1), and a shard holds thousands of keys: copy only when a
        # recovery store will keep it. Pickle is the cheapest deep copy of a dict of small objects,
        # and only the buckets of keys touched since the last snapshot are pickled again
        # (utopia.steps.snapshots); unflushed keys go along, so no changelog update is lost on resume.
        if self.buckets is None:
            return None
        _, *rest = self._snapshot_state()
        snapshot = pickle.dumps((SHARDS, (self.buckets.snapshot(self.states), *rest)), pickle.HIGHEST_PROTOCOL)
        self._touch(self._waiting_keys())  # applied or read later, as if they arrived again
        return snapshot

    def _snapshot_state(self) -> tuple:
        return self.states, self.changed

    def _waiting_keys(self) -> Iterable[str]:
        """Keys of what waits in the shard (not in a state) to be applied to their states later."""
        return ()

    def _touch(self, keys: Iterable[str]) -> None:
        """These keys' states may have changed: their buckets go into the next snapshot anew."""
        if self.buckets is not None:
            self.buckets.touched.update(keys)

    def _restore(self, states: dict[str, Any], changed: dict[str, None]) -> None:
        self.states, self.changed = states, changed


def _shards_and_state(snapshot: tuple) -> tuple[int, tuple]:
    """A shard's snapshot: the shard count it was taken under, and the state's own tuple."""
    if len(snapshot) != 2 or type(snapshot[0]) is not int:
        raise ConfigError(
            "the recovery store was written by an earlier version, without its shard count: "
            "start with a new recovery store"
        )
    return snapshot


class JoinLogic(ShardLogic):
    """A shard that also answers lookups: each one once its lane's records before it have all arrived.

    The state answers `read(lookup)` as of the lookup's position, so a record that came later in
    the input but reached this step first does not show (docs/outputs.md#ordering).
    """

    def __init__(self, snapshot: bytes | None, step: KeyedStep):
        self.read_up_to: dict[int, int] = {}  # lane -> end of the last mark
        self.pending: list[tuple[str, Lookup]] = []
        super().__init__(snapshot, step)

    def _restore(
        self,
        states: dict[str, Any],
        changed: dict[str, None],
        read_up_to: dict[int, int] | None = None,
        pending: list | None = None,
    ) -> None:
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
        return self._done(outputs, batches)

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

    def _waiting_keys(self) -> Iterable[str]:
        return map(_key, self.pending)


class OrderedLogic(ShardLogic):
    """A shard that applies its own records and the items of another step together, in input order.

    The items (`Sequenced`) come by another path, from every shard of a step that tells how far it
    has sent (`Front`), so they may arrive before records that came earlier in the input, or after
    later ones. Each lane's records and items wait in a queue by (position, sub) until this shard
    has its own input and every upstream shard's past them, then are applied in that order: the
    state sees exactly the sequence one process reading the input would (docs/outputs.md#ordering).
    """

    def __init__(self, snapshot: bytes | None, step: KeyedStep):
        self.read_up_to: dict[int, int] = {}  # lane -> end of this step's own input sent here
        self.fronts: dict[int, list[int]] = {}  # lane -> per upstream shard, the end it has sent
        self.queues: dict[int, list[tuple]] = {}  # lane -> heap of (position, sub, arrival, key, item)
        self.arrivals = 0
        super().__init__(snapshot, step)

    def _restore(
        self,
        states: dict[str, Any],
        changed: dict[str, None],
        read_up_to: dict | None = None,
        fronts: dict | None = None,
        queues: dict | None = None,
        arrivals: int = 0,
    ) -> None:
        super()._restore(states, changed)
        self.read_up_to, self.fronts, self.queues = read_up_to or {}, fronts or {}, queues or {}
        self.arrivals = arrivals

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
                elif type(item) is Front:
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
        return self._done(outputs, batches)

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
            if self.step.changelog == NO_CACHE:
                outputs.append(state.value())
            else:
                self.changed[key] = None

    def _snapshot_state(self) -> tuple:
        return self.states, self.changed, self.read_up_to, self.fronts, self.queues, self.arrivals

    def _waiting_keys(self) -> Iterable[str]:
        return (entry[3] for queue in self.queues.values() for entry in queue)


_key = itemgetter(0)
"""The key of a `(key, value)` pair."""


class Courier(StatefulBatchLogic):
    """A worker's bundles of one step, handed on parcel by parcel, each keyed by its shard; it keeps nothing."""

    def __init__(self, snapshot: None):
        pass

    def on_batch(self, bundles: list[list[tuple[str, list]]]) -> tuple[list[tuple[str, list]], bool]:
        return [parcel for bundle in bundles for parcel in bundle], False

    def snapshot(self) -> None:
        return None


class WorkerShards(StatefulBatchLogic):
    """The shards of one keyed step that live on one worker, fed whole bundles (a run without recovery).

    Bytewax keeps state per key, and the key of a bundle is its worker, so here the worker's
    shards are one state: no step hands the parcels on, and a batch costs one Bytewax item and one
    exchange per worker and step, not two. With recovery the states stay keyed by shard (the
    `deliver_to_each_worker` step), so that a recovery store resumes under any worker count.
    """

    def __init__(self, new_shard: Callable[[], ShardLogic], step: KeyedStep):
        self.new_shard = new_shard
        self.shards: dict[str, ShardLogic] = {}
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
