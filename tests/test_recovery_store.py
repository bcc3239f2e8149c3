"""Reading Bytewax's recovery store as Bytewax does (utopia.io.recovery_store), on stores Bytewax wrote.

Exactly-once output commits a transaction only once a resume would load its snapshot, so these
readings must agree with Bytewax 0.21.1's own; a Bytewax that changed its store fails here.
"""

import pickle
import sqlite3
import subprocess
import sys
from datetime import timedelta

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig
from bytewax.testing import TestingSink, TestingSource, run_main

from tests.kafka_support import ROOT
from utopia.config import ConfigError
from utopia.io.kafka_io import check_exactly_once
from utopia.io.recovery_store import RecoveryStore
from utopia.io.runtime import RunFlags


def counted(store_dir, items: list[str]) -> list:
    """A keyed count over `items`, one epoch per item, with recovery in `store_dir`."""
    flow = Dataflow("count")
    keyed = op.key_on("key", op.input("in", flow, TestingSource(items)), lambda item: item)
    counts = op.stateful_map("count", keyed, lambda count, _: ((count or 0) + 1, (count or 0) + 1))
    out: list = []
    op.output("out", counts, TestingSink(out))
    run_main(flow, epoch_interval=timedelta(0), recovery_config=RecoveryConfig(str(store_dir)))
    return out


ABORT = TestingSource.ABORT()
"""The run dies here, as a killed one: no state is snapshotted at the end of its input."""
STEP = "count.count.stateful_flat_map.stateful.stateful_batch"
"""Where Bytewax keeps `stateful_map`'s states: under the innermost step's id."""


@pytest.fixture
def store_dir(tmp_path):
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(tmp_path), "2"], check=True, capture_output=True)
    return tmp_path


def test_a_finished_run_resumes_after_its_last_epoch_with_its_last_states(store_dir):
    counted(store_dir, ["a", "b", "a"])
    store = RecoveryStore(store_dir)
    execution = store.last_execution()
    assert (execution.number, execution.worker_count) == (0, 1)
    epoch = store.resume_epoch()
    assert store.state_before(STEP, "a", epoch) == 2
    assert store.state_before(STEP, "b", epoch) == 1
    assert store.state_before(STEP, "a", 0) is None  # nothing was snapshotted before the first epoch
    again = counted(store_dir, ["a", "b", "a", "a"])  # Bytewax resumes after the third item, a's count from 2
    assert again == [("a", 3)]
    assert RecoveryStore(store_dir).last_execution().number == 1


def crashed_mid_epoch(store_dir) -> None:
    """A store after a run killed mid-epoch: it had snapshotted a's state (99) in an epoch it never finished."""
    counted(store_dir, ["a", "b"])
    epoch = RecoveryStore(store_dir).resume_epoch()
    with sqlite3.connect(sorted(store_dir.glob("part-*.sqlite3"))[0]) as connection:
        connection.execute(
            "INSERT INTO snaps (step_id, state_key, snap_epoch, ser_change) VALUES (?, ?, ?, ?)",
            (STEP, "a", epoch + 1, pickle.dumps(99)),
        )


def test_bytewax_alone_later_resumes_a_state_that_a_crashed_run_left_past_its_resume(store_dir):
    crashed_mid_epoch(store_dir)
    counted(store_dir, ["a", "b", "b", "b", "b", "b", ABORT])  # resumed past the dead run's epochs, a untouched
    assert counted(store_dir, ["a", "b", "b", "b", "b", "b", "a"]) == [("a", 100)]  # a resumed from the dead run


def test_those_states_are_forgotten_before_a_resume_and_the_stored_ones_kept(store_dir):
    crashed_mid_epoch(store_dir)
    assert RecoveryStore(store_dir, writable=True).forget_unfinished() == 1  # as every dataflow run does first
    counted(store_dir, ["a", "b", "b", "b", "b", "b", ABORT])
    assert counted(store_dir, ["a", "b", "b", "b", "b", "b", "a"]) == [("a", 2)]


def test_exactly_once_resumes_a_store_only_with_the_workers_that_wrote_it(store_dir):
    counted(store_dir, ["a"])  # one worker wrote it
    check_exactly_once(RunFlags(store_dir, 1.0, process_id=0, processes=1, workers_per_process=1))
    with pytest.raises(ConfigError, match=r"written by 1 worker\(s\) and this run has 4: .* start a new store"):
        check_exactly_once(RunFlags(store_dir, 1.0, process_id=0, processes=2, workers_per_process=2))


def test_exactly_once_names_a_directory_without_recovery_partitions_and_how_to_make_them(tmp_path):
    with pytest.raises(
        ConfigError,
        match=rf"{tmp_path / 'none'} has no recovery partitions: make them with "
        rf"`mkdir -p {tmp_path / 'none'} && python -m bytewax.recovery ",
    ):
        check_exactly_once(RunFlags(tmp_path / "none", 1.0, process_id=0, processes=1, workers_per_process=1))


@pytest.mark.parametrize(
    "process", [[], ["-i", "0", "-a", "localhost:1;localhost:2"], ["-i", "1", "-a", "localhost:1;localhost:2"]]
)
def test_a_missing_recovery_directory_is_one_line_in_every_process(tmp_path, process):
    missing = tmp_path / "recovery"
    done = subprocess.run(
        [sys.executable, "-m", "bytewax.run", "dataflows.sold_out", "-r", str(missing), "-s", "1", "-b", "1", *process],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"utopia sold_out: the recovery directory {missing} has no recovery partitions: make them with "
        f"`mkdir -p {missing} && python -m bytewax.recovery {missing} 1`"
    ]


def test_a_directory_with_only_some_partitions_is_not_read_as_the_whole_store(store_dir):
    """A process's own disk in a run over several hosts: its resume epoch could read too early."""
    crashed_mid_epoch(store_dir)
    sorted(store_dir.glob("part-*.sqlite3"))[1].unlink()  # the other host's partition
    assert not RecoveryStore(store_dir).complete()
    assert RecoveryStore(store_dir, writable=True).forget_unfinished() == 0
    with pytest.raises(ConfigError, match="does not hold every recovery partition"):
        check_exactly_once(RunFlags(store_dir, 1.0, process_id=0, processes=1, workers_per_process=1))
