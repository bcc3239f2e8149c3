"""Shards split evenly over Bytewax workers: checked on real Bytewax workers, not on our hash."""

import threading
from collections import Counter

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, cluster_main

from utopia.sharding import SHARD_NAMES, SHARDS, bytewax_route, siphash13


def workers_of_shards(workers: int) -> Counter:
    """How many shards each worker thread holds state for, on a real Bytewax cluster."""
    flow = Dataflow("route")
    shards = op.input("shards", flow, TestingSource([(name, None) for name in SHARD_NAMES]))
    owners = op.stateful_map("owner", shards, lambda state, _: (None, threading.current_thread().name))
    seen: list = []
    op.output("out", owners, TestingSink(seen))
    cluster_main(flow, [], 0, worker_count_per_proc=workers)
    return Counter(owner for _, owner in seen)


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_every_worker_gets_an_equal_share_of_the_shards(workers):
    counts = workers_of_shards(workers)
    assert len(counts) == workers
    assert set(counts.values()) == {SHARDS // workers}, counts  # exactly: 24 shards, 2, 3 or 4 workers


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
    from utopia.sharding import SHARD_KEYS, SHARDS, shard_key, shard_of

    assert [shard_of(key) for key in SHARD_KEYS] == list(range(SHARDS))
    assert shard_of(shard_key("c-0000017")) == shard_of("c-0000017")
