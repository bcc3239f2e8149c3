"""The one engine under every keyed step: records routed to shards, bundled per worker, applied there.

Each named step (utopia.steps.keyed, .joins, .per_shard, .ordering) says how its input reaches
the shards (a `Route`) and which shard logic applies it (utopia.steps.shards); `keyed_step` builds
the Bytewax steps. In Bytewax's terms a keyed step is a `stateful_batch` keyed by shard, not by
record key: a source batch becomes one Bytewax item per shard (or per worker), not one per record,
and each shard applies its records in input order to a dict of per-key states.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

import bytewax.operators as op
from bytewax.dataflow import Stream

from utopia.codec import Batch
from utopia.io.runtime import planned_workers
from utopia.steps import state as states
from utopia.steps import wire
from utopia.steps.ends import FlowIO, sink_items
from utopia.steps.holding import WAITING_LOG
from utopia.steps.items import Lookup, Out, Placed, Sent
from utopia.steps.sharding import SHARD_KEYS, SHARD_NAMES, SHARDS, bundle_names, worker_of
from utopia.steps.shards import (
    Courier,
    JoinLogic,
    KeyedStep,
    Mark,
    OrderedLogic,
    ShardLogic,
    Unfinished,
    WorkerShards,
)

KeyFields = Mapping[Any, str | Callable[[Any], str | None]]
"""Which field holds a record's key in a keyed step, per record type (the exact type), or what gives it.

A record of a type not named skips the step, and so does one whose key is null.
"""

Values = Mapping[Any, Callable[[list], list]]
"""Per record type, what of a run of records reaches the states, in one call (`value_of_runs`)."""


class Route(NamedTuple):
    """How a keyed step's input reaches its shards: what each shard's states are sent, and with what marks."""

    key: KeyFields
    values: Values = {}
    """Types not named here reach the states whole."""
    everywhere: tuple[type, ...] = ()
    """Record types sent to every shard, at the key of the shard's one state (utopia.steps.per_shard)."""
    shard_states: bool = False
    """Whether a record goes to the one state of its key's shard (`SHARD_KEYS`) rather than to its key's own."""
    asked_by: tuple[type, ...] = ()
    """Record types that cause lookups upstream: a batch with any tells every shard how far it has been read."""
    tells: bool = False
    """Whether each shard tells the next step how far it has sent (`Front`), for `in_order` there."""
    ordered: bool = False
    """Whether every batch tells every shard how far it has been read, and the upstream's fronts are passed on."""


def each_value(value: Callable[[Any], Any]) -> Callable[[list], list]:
    """`value` applied to each record of a run: the run function of a per-record `value`."""
    return partial(_mapped, value)


def _mapped(value: Callable[[Any], Any], records: list) -> list:
    return list(map(value, records))


def keyed_step(
    step_id: str,
    up: Stream,
    route: Route,
    new: Callable[[str], Any],
    logic: type[ShardLogic],
    *,
    changelog: Any = None,
    also: Iterable[Stream] = (),
    dead_letters: FlowIO | None = None,
    recheck: Any = None,
) -> Stream[list[Sent]]:
    """The Bytewax steps of one keyed step: route `up` (and the items of `also`) to shards, apply them there.

    For the named steps only, inside their own `@operator`: each passes what its idea needs.
    """
    flow_id = up.flow().flow_id
    holds = states.checked(
        step_id,
        new,
        route.key,
        route.values,
        changelog=changelog is not None,
        answers=logic is JoinLogic,
        in_order=logic is OrderedLogic,
        recheck=recheck is not None,
        dead_letters=dead_letters is not None,
    )
    step = KeyedStep(flow_id, new, changelog, holds, WAITING_LOG if holds else None, recheck, hasattr(new, "at_end"))
    others = list(also)
    inputs = op.merge("with_items_of_other_steps", up, *others) if others else up
    workers = planned_workers()
    sharded = op.flat_map("shard", inputs, _router(route, new, _by_worker(workers) if workers > 1 else _each_shard))
    if workers == 1:
        applied = op.stateful_batch("apply", sharded, lambda snap: logic(snap, step))
    elif ShardLogic.snapshots:  # bundles to workers, then each shard's parcel on its own, its state kept by shard
        delivered = op.stateful_batch("deliver_to_each_worker", sharded, Courier)
        sharded = op.flat_map_batch("each_shard", delivered, _item_values)
        applied = op.stateful_batch("apply", sharded, lambda snap: logic(snap, step))
    else:  # bundles to workers, each applied there by the worker's shards
        shards_of_worker = partial(WorkerShards, partial(logic, None, step), step)
        applied = op.stateful_batch("apply_on_each_worker", sharded, lambda _: shards_of_worker())
    outputs = op.flat_map_batch("outputs", applied, _item_values)
    if not holds or dead_letters is None:  # `checked` asks for dead letters where records are held
        return outputs
    waited = op.branch("waited_until_the_end", outputs, _is_unfinished)
    sink = dead_letters.sink(flow_id, "dead-letters")
    op.output("dead_letters", op.flat_map("each_dead_letter", waited.trues, sink_items(sink)), sink)
    return waited.falses


Parcels = list[list[tuple[str | None, Any]]]


def _router(route: Route, new: Callable[[str], Any], send: Callable[[Parcels], list]) -> Callable[[Any], list]:
    """What routes each batch of records, or of another step's `(key, value)` pairs, to the shards (`send`)."""
    getters = {kind: field if callable(field) else attrgetter(field) for kind, field in route.key.items()}
    placed = frozenset(getattr(new, "placed", ()))
    holds = frozenset(getattr(new, "holds", ()))
    marks = frozenset(route.asked_by)
    everywhere = frozenset(route.everywhere)
    wanted = frozenset(getters) | marks | everywhere
    values_of, tells, ordered, shard_states = route.values, route.tells, route.ordered, route.shard_states

    def by_shard(batch: Batch | list[tuple[str, Lookup]]) -> list:
        shards: Parcels = [[] for _ in range(SHARDS)]
        if not isinstance(batch, Batch):  # from another keyed step: (key, value) pairs
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
                crcs = map(zlib.crc32, map(str.encode, keys))
                if shard_states:
                    for v, crc in zip(values, crcs):
                        n = crc % SHARDS
                        shards[n].append((SHARD_KEYS[n], v))
                else:
                    for k, v, crc in zip(keys, values, crcs):
                        shards[crc % SHARDS].append((k, v))
            marked = marked or kind in marks
        if tells:
            for n, pairs in enumerate(shards):
                pairs.append((None, Mark(batch.lane, batch.end, n)))
        elif marked or ordered:
            mark = Mark(batch.lane, batch.end)
            for pairs in shards:
                pairs.append((None, mark))
        return send(shards)

    def _keyed(batch: Batch, kind: type, records: list, indices: Sequence[int]) -> tuple[list[str], list[Any]]:
        """The keys and values of a run of records of one type, in C loops where it can."""
        keys, values = list(map(getters[kind], records)), _values(batch, kind, records, indices)
        if None in keys:
            values = [v for k, v in zip(keys, values) if k is not None]
            keys = [k for k in keys if k is not None]
        return keys, values

    def _values(batch: Batch, kind: type, records: list, indices: Sequence[int]) -> list[Any]:
        """What of a run of records of one type reaches the states: see `placed` and `holds` (utopia.steps.state)."""
        of_run = values_of.get(kind)
        values = records if of_run is None else of_run(records)
        if kind in holds:
            values = list(zip(batch.raw(indices), values))
        if kind in placed:
            lane, position = batch.lane, batch.position
            values = [Placed(lane, position + i, v) for i, v in zip(indices, values)]
        return values

    return by_shard


def _each_shard(shards: list[list[tuple[str | None, Any]]]) -> list[tuple[str, list[tuple[str | None, Any]]]]:
    """Each shard's parcel as a Bytewax item, keyed by the shard's name (one worker, or several in one process)."""
    return [(SHARD_NAMES[n], pairs) for n, pairs in enumerate(shards) if pairs]


def _by_worker(workers: int) -> Callable[[list[list[tuple[str | None, Any]]]], list[tuple[str, _Bundle]]]:
    """For `workers` workers: the shards' parcels in one bundle per worker that owns some, keyed to reach it.

    A batch splits into up to one parcel per shard, and with several processes about half of them
    go to another one. Each crossing costs Bytewax a pickle, a message and an unpickle whatever its
    size, and parcels are small (7 records on average on sold_out): bundled, a batch crosses once per
    worker and step. A shard's parcels always go in the bundle of the same worker, which applies
    them (`WorkerShards`); with recovery its `deliver_to_each_worker` step hands each parcel on,
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
    _encoded: bytes

    def __reduce__(self) -> tuple[Callable, tuple[bytes]]:
        try:
            encoded = self._encoded
        except AttributeError:
            encoded = self._encoded = wire.encode(self)
        return wire.decode, (encoded,)


def _is_unfinished(batch: list[Out]) -> bool:
    return type(batch) is Unfinished


_second = itemgetter(1)
_item_values = partial(map, _second)
"""The values of a batch of a keyed step's `(key, value)` items, in one C loop (`op.map` calls Python per item)."""
