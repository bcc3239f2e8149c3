"""State per shard of customers, with records every shard needs broadcast to all of them.

For a question about many customers at once (an event's fans among all customers who like its
genre): one state serves each of the 24 shards (utopia.steps.sharding) and holds its customers,
and the records that concern all of them (artists, events) reach every shard, in input order with
the shard's own, so each shard's state is exactly as of each record.
"""

from __future__ import annotations

from typing import Any

from bytewax.dataflow import Stream, operator

from utopia.codec import Batch
from utopia.steps.ends import FlowIO
from utopia.steps.engine import KeyFields, Route, keyed_step
from utopia.steps.items import Sent
from utopia.steps.shards import JoinLogic, ShardLogic
from utopia.steps.state import StateClass


@operator
def per_shard(
    step_id: str,
    up: Stream[Batch],
    key: KeyFields,
    state: StateClass,
    everywhere: tuple[type, ...],
    dead_letters: FlowIO | None = None,
    tells: bool = False,
) -> Stream[list[Sent]]:
    """Each record applied to the state of its key's shard (`key`: the customer), those of `everywhere` to all.

    The state's key is its shard's (`SHARD_KEYS`). With `tells`, each shard also tells the next
    step how far it has sent, for an `in_order` step there (utopia.steps.ordering); a step that
    tells sends alerts, and its output goes to such a step (or `rekey`, which leaves the marks out).
    """
    route = Route(key, everywhere=everywhere, shard_states=True, tells=tells)
    return keyed_step(step_id, up, route, state, ShardLogic, dead_letters=dead_letters)


@operator
def per_shard_join_as_of(
    step_id: str,
    up: Stream[Batch],
    key: KeyFields,
    state: StateClass,
    everywhere: tuple[type, ...],
    lookups: Stream[Any],
    asked_by: tuple[type, ...],
    dead_letters: FlowIO | None = None,
) -> Stream[list[Sent]]:
    """`per_shard`, whose states also answer `lookups` as of their place in the input (see `join_as_of`).

    A lookup for every customer goes to every shard (`SHARD_KEYS`); each answers for its own.
    """
    route = Route(key, everywhere=everywhere, shard_states=True, asked_by=asked_by)
    return keyed_step(step_id, up, route, state, JoinLogic, also=(lookups,), dead_letters=dead_letters)
