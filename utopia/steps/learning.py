"""Facts every worker learns, and records that take a shortcut with them (must_see_venue's venues)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from operator import is_not
from typing import Any, TypeVar

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulBatchLogic

from utopia.codec import Batch
from utopia.io.runtime import planned_workers
from utopia.steps.items import Placed
from utopia.steps.sharding import bundle_names

R = TypeVar("R")


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

    def to_every_worker(batch: Batch) -> list[tuple[str, list[Placed[Any]]]]:
        lane, position = batch.lane, batch.position
        placed = [
            Placed(lane, position + i, record)
            for _, records, indices in batch.runs(wanted)
            for i, record in zip(indices, records)
        ]
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
def shortcut(
    step_id: str, up: Stream[Batch], kind: type[R], replace: Callable[[list[Any], int, Sequence[int]], list[Any]]
) -> Stream[Batch]:
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
