"""Items of another keyed step merged with a step's own records in input order (`in_order`)."""

from __future__ import annotations

from typing import Any

from bytewax.dataflow import Stream, operator

from utopia.codec import Batch
from utopia.steps.engine import KeyFields, Route, keyed_step
from utopia.steps.items import Sent
from utopia.steps.shards import OrderedLogic
from utopia.steps.state import StateClass


@operator
def in_order(
    step_id: str, up: Stream[Batch], key: KeyFields, state: StateClass, items: Stream[Any]
) -> Stream[list[Sent]]:
    """Records applied per key together with `items`, `Sequenced` values of a step that tells how far it has sent.

    The items come by another path (from every shard of that step), so they may arrive before
    records that came earlier in the input, or after later ones: each is applied once nothing that
    comes before it can still arrive, and the state sees exactly the sequence one process reading
    the input would. The state's own records must be `placed`; its alerts are the output.
    """
    return keyed_step(step_id, up, Route(key, ordered=True), state, OrderedLogic, also=(items,))
