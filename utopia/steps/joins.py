"""A join that reads a keyed step's state as of a record: lookups from another step, answered in input order.

Bytewax's `join` has no stream-table mode (bytewax issue #177): here the state that answers is a
keyed state like any other, and each lookup is answered once the step has read its lane past the
lookup's place in the input, as the state was there (docs/outputs.md#ordering).
"""

from __future__ import annotations

from typing import Any

from bytewax.dataflow import Stream, operator

from utopia.codec import Batch
from utopia.steps.engine import KeyFields, Route, keyed_step
from utopia.steps.items import Sent
from utopia.steps.shards import JoinLogic
from utopia.steps.state import StateClass


@operator
def join_as_of(
    step_id: str, up: Stream[Batch], key: KeyFields, state: StateClass, lookups: Stream[Any], asked_by: tuple[type, ...]
) -> Stream[list[Sent]]:
    """Records applied per key as `keyed_state` does, and `lookups` answered by `state.read(lookup)`.

    `asked_by` are the record types that cause lookups upstream: a batch with any of them tells
    every shard how far its lane has been read, so that no lookup waits for a later batch. The
    states' `apply` says nothing (its alerts, if any, leave as they come); their answers are the output.
    """
    return keyed_step(step_id, up, Route(key, asked_by=asked_by), state, JoinLogic, also=(lookups,))
