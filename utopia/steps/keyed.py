"""Keyed state: records (and items of other keyed steps) applied per key, giving alerts or a changelog.

What most dataflows are made of: Bytewax's `stateful_map` keyed by customer, event or venue, here a
`stateful_batch` over shards (utopia.steps.engine). One keyed step passes its output to the next in
one of three ways:

- `keyed_state(..., also=items)`: the next step keeps records of its own too (a venue's name) and
  takes the items the other step keyed for it;
- `items_per_key(...)`: the next step takes only the items other steps keyed for it (a global ranking);
- `rekey(...)` first: the items are keyed for another key than the next step's (tickets by zip code).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream, operator

from utopia.codec import Batch
from utopia.steps.ends import FlowIO
from utopia.steps.engine import KeyFields, Route, Values, each_value, keyed_step
from utopia.steps.items import Sent
from utopia.steps.shards import ShardLogic
from utopia.steps.state import StateClass


@operator
def keyed_state(
    step_id: str,
    up: Stream[Batch],
    key: KeyFields,
    state: StateClass,
    value: Callable[[Any], Any] | None = None,
    value_of_runs: Values | None = None,
    changelog: timedelta | None = None,
    dead_letters: FlowIO | None = None,
    also: Stream[Any] | None = None,
) -> Stream[list[Sent]]:
    """Apply each record, in input order, to the state of its key (`state(key)` makes a fresh one).

    `value` picks what of a record the state needs (default: the whole record): only that travels
    to the worker that owns the key, and with several processes it is encoded on the way, so small
    values keep the exchange cheap. `value_of_runs` does the same, per record type, for a whole run
    of records in one call, where a Python call per record would cost more than the rest of the
    record's way; the types it does not name get `value`.

    With a `changelog` flush interval, each changed key's `value()` is sent at most once per
    interval (and at the end of a finite input; 0: every change); without, the alerts `apply`
    returns leave with the batch that caused them. A state that holds records needs `dead_letters`,
    where what still waits at the end of a finite input goes. `also`: items another keyed step sent,
    keyed for this one, applied as they come (utopia.steps.state lists every hook).
    """
    values = ({kind: each_value(value) for kind in key} if value is not None else {}) | dict(value_of_runs or {})
    return keyed_step(
        step_id,
        up,
        Route(key, values),
        state,
        ShardLogic,
        changelog=changelog,
        also=() if also is None else (also,),
        dead_letters=dead_letters,
    )


@operator
def items_per_key(
    step_id: str,
    up: Stream[Any],
    state: StateClass,
    changelog: timedelta | None = None,
    recheck: timedelta | None = None,
) -> Stream[list[Sent]]:
    """Apply the items other keyed steps sent (`(key, value)` pairs) to the states of their keys, as they come.

    With `recheck`, changelog values also change as time passes, with no item (global_totals'
    events that take place): every `recheck` each shard asks its states `recheck()`, whether the
    clock alone changed their value, and at the end of a finite input every key is sent once more.
    """
    return keyed_step(step_id, up, Route({}), state, ShardLogic, changelog=changelog, recheck=recheck)


@operator
def rekey(step_id: str, up: Stream[list[Sent]], key_of: Callable[[Any], str]) -> Stream[list[Sent]]:
    """The items of a keyed step, keyed anew by `key_of(item)` for another (how far it has sent is left out)."""

    def keyed(batch: list[Sent]) -> list[Sent]:
        return [(key_of(item), item) for key, item in batch if key is not None]

    return op.map("key_anew", up, keyed)
