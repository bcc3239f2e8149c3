"""Shards split evenly over Bytewax workers (checked on real Bytewax workers, not on our hash), and a worker's
shards answer as one Bytewax state."""

import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, cluster_main

from utopia.rules.listening import StreamCount
from utopia.steps.sharding import (
    SHARD_NAMES,
    SHARDS,
    bundle_names,
    bytewax_route,
    configured_shards,
    siphash13,
    worker_of,
)
from utopia.steps.shards import KeyedStep, ShardLogic, WorkerShards
from utopia.tools.generator import Sizes
from utopia.tools.loading import write_dir


def owners(names: list[str], workers: int) -> dict[str, str]:
    """The worker thread that holds each key's state, on a real Bytewax cluster."""
    flow = Dataflow("route")
    keys = op.input("keys", flow, TestingSource([(name, None) for name in names]))
    owner = op.stateful_map("owner", keys, lambda state, _: (None, threading.current_thread().name))
    seen: list = []
    op.output("out", owner, TestingSink(seen))
    cluster_main(flow, [], 0, worker_count_per_proc=workers)
    return dict(seen)


def workers_of_shards(workers: int) -> Counter:
    """How many shards each worker thread holds state for, on a real Bytewax cluster."""
    return Counter(owners(SHARD_NAMES, workers).values())


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_every_worker_gets_an_equal_share_of_the_shards(workers):
    counts = workers_of_shards(workers)
    assert len(counts) == workers
    assert set(counts.values()) == {SHARDS // workers}, counts  # exactly: 24 shards, 2, 3 or 4 workers


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_a_workers_bundle_reaches_the_worker_that_holds_its_shards(workers):
    names = bundle_names(workers)
    owner = owners(SHARD_NAMES + names, workers)
    assert len({owner[name] for name in names}) == workers  # one bundle key per worker
    for shard in SHARD_NAMES:
        assert owner[shard] == owner[names[worker_of(shard, workers)]]


def test_names_are_distinct_and_our_route_matches_bytewax():
    assert len(set(SHARD_NAMES)) == SHARDS
    by_route = Counter(bytewax_route(name) % 2 for name in SHARD_NAMES)
    assert sorted(by_route.values()) == sorted(workers_of_shards(2).values()) == [12, 12]


def test_route_matches_rusts_default_hasher():
    # Printed by a Rust program built here with rustc 1.95: `DefaultHasher::new()`, then
    # `h.write(b"")` or `String::from(k).hash(&mut h)`, then `h.finish()`.
    assert siphash13(b"") == 0xD1FBA762150C532C
    assert bytewax_route("0") == 0xFC6647014FB554E5
    assert bytewax_route("kafka-workshop-customer-42") == 0x8E5122722DD13200
    assert bytewax_route("0123456789abcdef") == 0x3CDD3EE8E7C8D0CB  # a whole 8-byte block and more


def test_each_shard_has_a_key_of_its_own():
    from utopia.steps.sharding import SHARD_KEYS, SHARDS, shard_key, shard_of

    assert [shard_of(key) for key in SHARD_KEYS] == list(range(SHARDS))
    assert shard_of(shard_key("c-0000017")) == shard_of("c-0000017")


def test_the_shard_count_is_a_setting():
    assert configured_shards({}) == 24
    assert configured_shards({"UTOPIA_SHARDS": "48"}) == 48
    assert configured_shards({"UTOPIA_SHARDS": "none"}) == 24  # Settings.from_env stops such a run (test_config)


def test_another_shard_count_gives_the_same_outputs(tmp_path):
    """UTOPIA_SHARDS only changes how keys are grouped for the workers, never a result."""
    write_dir(tmp_path / "in", Sizes(customers=40, artists=8, events=12, tickets=300, streams=800, zipcodes=3), 5)
    finals = {}
    for shards in ("24", "5"):
        out = tmp_path / shards
        subprocess.run(
            [
                sys.executable,
                "-m",
                "utopia.cli",
                "run",
                "sold_out",
                "--input",
                str(tmp_path / "in"),
                "--output",
                str(out),
                "--workers",
                "2",
            ],
            env=os.environ | {"UTOPIA_SHARDS": shards},
            check=True,
            capture_output=True,
        )
        finals[shards] = {path.name: sorted(path.read_text().splitlines()) for path in out.glob("*.jsonl")}
    assert finals["5"] == finals["24"]
    assert len(finals["24"]["kafka-workshop-event-streamer-alerts.jsonl"]) > 0


def test_a_workers_shards_flush_their_changelogs_each_when_due():
    """Without recovery a worker's shards are one Bytewax state: its timer is the earliest of theirs."""
    step = KeyedStep("test", StreamCount, timedelta(seconds=60), (), None)
    worker = WorkerShards(partial(ShardLogic, None, step), step)
    assert worker.notify_at() is None  # nothing to flush
    before = datetime.now(UTC)
    bundle = [(SHARD_NAMES[0], [("c1", None), ("c1", None)]), (SHARD_NAMES[5], [("c2", None)])]
    assert worker.on_batch([bundle]) == ([], False)  # a changelog waits for its flush
    worker.shards[SHARD_NAMES[5]].flush_at = before  # shard 5 is due, shard 0 in a minute
    assert worker.notify_at() == before
    outputs, _ = worker.on_notify()
    assert [(key, value.streams) for batch in outputs for key, value in batch] == [("c2", 1)]
    assert before + timedelta(seconds=59) < worker.notify_at() <= datetime.now(UTC) + timedelta(seconds=60)
    worker.on_batch([[(SHARD_NAMES[5], [("c2", None)])]])
    outputs, _ = worker.on_eof()  # the end of the input flushes every shard
    assert sorted((key, value.streams) for batch in outputs for key, value in batch) == [("c1", 2), ("c2", 2)]
