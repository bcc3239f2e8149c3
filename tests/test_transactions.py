"""The exactly-once sink's own rules, on the real broker, one partition at a time (utopia.io.transactions).

A transaction is committed only once the recovery store would resume past its records; a
partition rebuilt from a snapshot sends again what Kafka never committed, and never what it did.
"""

import time

import pytest

from tests.kafka_support import Cluster
from utopia.io.runtime import RunFlags
from utopia.io.transactions import TransactionalSink
from utopia.models import DeadLetter

pytestmark = pytest.mark.kafka


def letter(n: int) -> tuple[str, DeadLetter]:
    return f"k{n}", DeadLetter(
        dataflow="test", topic="in", partition=0, offset=n, key=f"k{n}", value="v", error=f"record {n}"
    )


@pytest.fixture
def sink(tmp_path):
    cluster = Cluster()
    flags = RunFlags(tmp_path, 1.0, process_id=0, processes=1, workers_per_process=1)
    sink = TransactionalSink(cluster.settings, "test", cluster.settings.topics.output("dead-letters"), flags)
    assert sink.list_parts() == ["000-000"]
    return cluster, sink


def offsets(cluster: Cluster) -> list[int]:
    return sorted(value["offset"] for _, value in cluster.read("dead-letters"))


def test_records_show_only_once_the_store_has_their_snapshot(sink):
    cluster, sink = sink
    part = sink.build_part("test.out", "000-000", None)
    part.write_batch([[letter(1), letter(2)]])
    assert part.snapshot() == (2, (1,))  # the next transaction is 2; 1 waits for the store
    part.write_batch([[letter(3)]])  # the next epoch's record waits for transaction 1 to commit
    time.sleep(1.0)
    assert offsets(cluster) == []  # the store has not got the snapshot: nothing shows
    part.stored(1)
    part.finish(time.monotonic() + 30)
    assert offsets(cluster) == [1, 2]
    assert part.snapshot() == (3, (2,))
    part.stored(2)
    part.finish(time.monotonic() + 30)
    assert offsets(cluster) == [1, 2, 3]


def test_a_resumed_partition_sends_again_what_kafka_never_committed_and_only_that(sink):
    cluster, sink = sink
    crashed = sink.build_part("test.out", "000-000", None)
    crashed.write_batch([[letter(1)]])
    state = crashed.snapshot()  # the store has this snapshot, and the run dies before Kafka commits
    assert state == (2, (1,))
    crashed.write_batch([[letter(2)]])  # the next epoch, never snapshotted: recomputed after the resume

    resumed = sink.build_part("test.out", "000-000", state)  # fences `crashed`: its transaction is aborted
    assert offsets(cluster) == [1]  # sent again from its file, and committed
    again = sink.build_part("test.out", "000-000", state)  # another crash, the same snapshot: 1 is committed now
    again.write_batch([[letter(2)]])
    assert again.snapshot() == (3, (2,))  # numbers go on after the committed marker
    again.stored(2)
    again.finish(time.monotonic() + 30)
    assert offsets(cluster) == [1, 2]
    assert resumed is not again
