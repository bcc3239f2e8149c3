"""Outputs never depend on batching, nor on the number of workers (docs/outputs.md#ordering).

Every dataflow runs on the same generated input (with bad records, tombstones and tickets for an
event that never comes) with batches of 1, 7 and the whole input, on 1 and 3 workers, and once on
3 workers built as for a run with recovery (states kept by shard, not by worker). Alerts must be
the same multiset every time, and every changelog key must end on the same value.
"""

from collections import Counter
from unittest.mock import patch

import pytest

from tests.conftest import plain
from utopia.cli import dataflow_names, load_build
from utopia.io.runtime import plan_workers
from utopia.io.testing import TestingIO, kafka_records, run
from utopia.models import CHANGELOGS, Ticket
from utopia.steps import shards
from utopia.tools.generator import Sizes, generate

WORLD = Sizes(customers=40, artists=8, events=12, tickets=300, streams=800, zipcodes=3)


def records():
    world = [g.value for g in generate(WORLD, seed=5)]
    odd = [
        ("streams", b"{not json"),
        ("tickets", b'{"id":"t-x"}'),
        ("events", None),
        ("emails", b"\xff"),
        Ticket("t-never-1", "c-0000001", "e-never"),
        Ticket("t-never-2", "c-0000002", "e-never"),
    ]
    # Spread the odd ones through the input rather than at one end.
    step = len(world) // len(odd)
    for n, item in enumerate(odd):
        world.insert(n * step + step // 2, item)
    return kafka_records(world)


RECORDS = records()


def outcome(name: str, batch_size: int, workers: int, recovery: bool = False) -> dict[str, Counter | dict]:
    io = TestingIO(RECORDS, batch_size=batch_size)
    plan_workers(workers)  # with 3, keyed steps send bundles per worker, as across processes
    # with recovery, states stay keyed by shard: bundles are handed on to each shard by a step of their own
    recovering = patch.object(shards.ShardLogic, "snapshots", recovery)
    try:
        with recovering:
            flow = load_build(name)(io)
    finally:
        plan_workers(1)
    run(flow, workers)
    result = {}
    for output, produced in io.outputs.items():
        if output in CHANGELOGS:
            # `as_of` (global-totals) is when a value was computed: the wall clock, never the same twice.
            result[output] = {key: {k: v for k, v in plain(value).items() if k != "as_of"} for key, value in produced}
        else:
            result[output] = Counter((key, repr(plain(value))) for key, value in produced)
    return result


@pytest.mark.parametrize("name", dataflow_names())
def test_same_outputs_whatever_the_batch_size_and_worker_count(name):
    expected = outcome(name, batch_size=1, workers=1)
    assert any(expected.values()), "the input gives this dataflow nothing to do"
    for batch_size in (1, 7, len(RECORDS)):
        for workers in (1, 3):
            assert outcome(name, batch_size, workers) == expected, (batch_size, workers)
    assert outcome(name, 7, 3, recovery=True) == expected
