"""The steps every dataflow is made of: read and decode topics, keep state per key, write outputs.

Records travel in batches (a list per source poll), so the Python cost per record stays small:
Bytewax's own per-item overhead is paid once per batch and shard, not once per record. `per_key`
still applies records one at a time in input order to a small pure state object per key, so the
business rules read as if there were no batching.
"""

from __future__ import annotations

import os
import pickle
import sys
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, Protocol, TypeVar

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.inputs import Source
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import Sink

from utopia.codec import Decoder, InRecord, KafkaBatch
from utopia.config import Topics
from utopia.models import Output, Record
from utopia.sharding import SHARD_NAMES, SHARDS

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

    def source(self, dataflow: str, topics: list[str]) -> Source[list[InRecord] | KafkaBatch]:
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
def read(step_id: str, flow: Dataflow, io: FlowIO, reads: Mapping[type[Record], Sequence[str]]) -> Stream[list[Record]]:
    """Read and decode the input topics of `reads` (record type -> required foreign keys).

    Bad records go to the dead-letter topic; the stream carries batches of good ones in input order.
    """
    decoder = Decoder(flow.flow_id, io.topics, reads)
    raw = op.input("consume", flow, io.source(flow.flow_id, decoder.topics))
    decoded = op.map("decode", raw, decoder.decode)
    dead = op.flat_map("bad_records", decoded, lambda batch: batch.dead)
    op.output("dead_letters", dead, io.sink(flow.flow_id, "dead-letters"))
    return op.filter("non_empty", op.map("good_records", decoded, lambda batch: batch.records), bool)


@operator
def write(step_id: str, up: Stream[list[Out]], io: FlowIO, output: str) -> None:
    """Write batches of output records to the output called `output`."""
    op.output("produce", op.flat_map("each", up, _each), io.sink(up.flow().flow_id, output))


def _each(batch: list[Out]) -> list[Out]:
    return batch


class _ShardLogic(StatefulBatchLogic):
    """All the keys of one shard: a dict of per-key state objects, fed records in order.

    Alert outputs leave with the batch that caused them. For a changelog, a changed key is only
    marked; its latest value is built and sent once per flush interval, as Kafka Streams' record
    cache does (SPEC section 2 allows it): most updates of a busy key never cost an output record.
    """

    snapshots = recovery_requested()

    def __init__(self, snapshot: bytes | None, new: Callable[[str], Any], changelog: timedelta | None):
        self.states: dict[str, Any]
        self.changed: dict[str, None]  # an ordered set of the keys to flush
        self.states, self.changed = ({}, {}) if snapshot is None else pickle.loads(snapshot)
        self.new = new
        self.changelog = changelog
        self.flush_at: datetime | None = None

    def on_batch(self, batches: list[list[tuple[str, Any]]]) -> tuple[list[list[Out]], bool]:
        states, new, changed, alerts = self.states, self.new, self.changed, self.changelog is None
        outputs: list[Out] = []
        for batch in batches:
            for key, record in batch:
                state = states.get(key)
                if state is None:
                    state = states[key] = new(key)
                applied = state.apply(record)
                if alerts:
                    outputs.extend(applied)
                elif applied:
                    changed[key] = None
        if changed and self.flush_at is None:
            self.flush_at = datetime.now(UTC) + self.changelog
        return ([outputs] if outputs else []), False

    def on_notify(self) -> tuple[list[list[Out]], bool]:
        return self.flush(), False

    def on_eof(self) -> tuple[list[list[Out]], bool]:
        return self.flush(), False

    def notify_at(self) -> datetime | None:
        return self.flush_at

    def flush(self) -> list[list[Out]]:
        states = self.states
        outputs = [states[key].value() for key in self.changed]
        self.changed, self.flush_at = {}, None
        return [outputs] if outputs else []

    def snapshot(self) -> bytes | None:
        # Bytewax asks for a snapshot of every touched key at each epoch end even without recovery
        # (src/operators.rs, v0.21.1), and a shard holds thousands of keys: copy only when a
        # recovery store will keep it. Pickle is the cheapest deep copy of a dict of small objects;
        # unflushed keys go along, so no changelog update is lost on resume.
        if not self.snapshots:
            return None
        return pickle.dumps((self.states, self.changed), pickle.HIGHEST_PROTOCOL)


KeyFields = Mapping[type, str]
"""Which field holds a record's key in a keyed step, per record type (the exact type)."""


@operator
def per_key(
    step_id: str,
    up: Stream[list[R]],
    key: KeyFields,
    new: Callable[[str], KeyState[Any] | ChangelogState[Any]],
    changelog: timedelta | None = None,
    value: Callable[[R], Any] | None = None,
) -> Stream[list[Out]]:
    """Apply each record, in input order, to the state of its key (`new(key)` makes a fresh one).

    Records of a type `key` does not name, or whose key is null, skip this step. `value` picks what
    of a record the state needs (default: the whole record): only that travels to the worker that
    owns the key, and with several processes it is pickled on the way, so small values keep the
    exchange cheap. With a `changelog` flush interval, the states are `ChangelogState`s and each
    changed key's value is sent at most once per interval (and at the end of a finite input);
    without, they are `KeyState`s whose alerts all leave at once.
    """
    getters = {kind: attrgetter(field) for kind, field in key.items()}

    def by_shard(batch: list[R]) -> list[tuple[str, list[tuple[str, Any]]]]:
        kinds = set(map(type, batch))
        if kinds.isdisjoint(getters):
            return []
        if len(kinds) == 1:  # a Kafka batch is one partition of one topic: keys in one C loop
            records, keys = batch, list(map(getters[type(batch[0])], batch))
        else:
            records = [r for r in batch if type(r) in getters]
            keys = [getters[type(r)](r) for r in records]
        if None in keys:
            records, keys = [r for r, k in zip(records, keys) if k is not None], [k for k in keys if k is not None]
        values = records if value is None else map(value, records)
        # A key's shard must be the same in every process: crc32, not `hash` (salted per process).
        shards: list[list[tuple[str, Any]]] = [[] for _ in range(SHARDS)]
        for k, v, crc in zip(keys, values, map(zlib.crc32, map(str.encode, keys))):
            shards[crc % SHARDS].append((k, v))
        return [(SHARD_NAMES[n], pairs) for n, pairs in enumerate(shards) if pairs]

    sharded = op.flat_map("shard", up, by_shard)
    applied = op.stateful_batch("apply", sharded, lambda snap: _ShardLogic(snap, new, changelog))
    return op.map("outputs", applied, _value)


def _value(keyed: tuple[str, list[Out]]) -> list[Out]:
    return keyed[1]
