"""State survives a crash: with Bytewax recovery, a resumed run continues the counts where they were."""

import pickle
from datetime import timedelta

import pytest
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSource, run_main

from dataflows import customer_stream_count, must_see_venue, purchase_event_ticket
from tests.conftest import plain
from tests.test_snapshots import previous_snapshot
from utopia.config import ConfigError
from utopia.io.testing import TestingIO, kafka_records
from utopia.models import Event, Stream, Ticket
from utopia.steps import recovery_requested, shards


class CrashingIO(TestingIO):
    """Feeds the batches, aborting the dataflow once before the last (as a crash would); built again, it does not."""

    crashed = False

    def source(self, dataflow, topics):
        source = super().source(dataflow, topics)
        if self.crashed:
            return source
        self.crashed = True
        batches = list(source._ib)
        return TestingSource(batches[:-1] + [TestingSource.ABORT()] + batches[-1:])


def run_with_crash(build, records, tmp_path, monkeypatch, crashed_snapshot=None):
    """The records' outputs through a run that crashes before their last batch and its resume.

    `crashed_snapshot`: how the run that crashes snapshots its shards, if not as this version does.
    """
    monkeypatch.setattr(shards.ShardLogic, "snapshots", True)
    init_db_dir(tmp_path, 1)
    io = CrashingIO(kafka_records(records), batch_size=2)
    recovery = RecoveryConfig(str(tmp_path))
    with monkeypatch.context() as crashing:
        if crashed_snapshot is not None:
            crashing.setattr(shards.ShardLogic, "snapshot", crashed_snapshot)
        run_main(build(io), epoch_interval=timedelta(0), recovery_config=recovery)  # stops at the abort
    # Built anew, as a restarted process builds it: nothing learned in memory survives, only the snapshots.
    run_main(build(io), epoch_interval=timedelta(0), recovery_config=recovery)  # resumes after the last snapshot
    return io


WRITTEN_BY = pytest.mark.parametrize(
    "crashed_snapshot", [None, previous_snapshot], ids=["this version", "the previous version's store"]
)
"""The crashed run's store written as this version writes it, or as the previous one did (its states in one dict)."""


@WRITTEN_BY
def test_counts_continue_after_a_crash(tmp_path, monkeypatch, crashed_snapshot):
    records = [Stream(f"s{i}", "c1", "a1") for i in range(7)] + [Stream("s7", "c2", "a1")]
    io = run_with_crash(customer_stream_count.build, records, tmp_path, monkeypatch, crashed_snapshot)
    assert plain(io.latest("customer-stream-count")["c1"]) == {"customerid": "c1", "streams": 7}
    assert plain(io.latest("customer-stream-count")["c2"]) == {"customerid": "c2", "streams": 1}


def test_held_tickets_survive_a_crash(tmp_path, monkeypatch):
    records = [Ticket("t1", "c1", "e1"), Ticket("t2", "c2", "e1"), Ticket("t3", "c3", "e1"), Event("e1", capacity=2)]
    io = run_with_crash(purchase_event_ticket.build, records, tmp_path, monkeypatch)
    assert sorted((k, v.status) for k, v in io.outputs["ticket-response"]) == [
        ("t1", "CONFIRMED"),
        ("t2", "CONFIRMED"),
        ("t3", "REJECTED"),
    ]


def test_tickets_after_a_resume_count_through_their_event_when_the_new_process_has_not_learned_it(
    tmp_path, monkeypatch
):
    # e1's venue is learned before the crash; after it, the tickets of e1 find it unknown and go through e1's step,
    # whose state (the venue) was in the snapshot.
    records = [Event("e1", venueid="v1"), Ticket("t1", "c1", "e1"), Ticket("t2", "c2", "e1"), Ticket("t3", "c3", "e1")]
    io = run_with_crash(must_see_venue.build, records, tmp_path, monkeypatch)
    assert plain(io.latest("must-see-venue")["customers"]) == {
        "metric": "customers",
        "venueid": "v1",
        "name": None,
        "count": 3,
    }


def test_recovery_is_detected_from_bytewax_run_flags():
    assert recovery_requested(["bytewax.run", "dataflows.x", "-r", "rec", "-s", "30", "-b", "30"], {})
    assert recovery_requested(["bytewax.run", "dataflows.x"], {"BYTEWAX_RECOVERY_DIRECTORY": "rec"})
    assert not recovery_requested(["bytewax.run", "dataflows.x", "-w", "2"], {})


@WRITTEN_BY
def test_a_join_keeps_its_pending_lookups_and_progress_across_a_crash(tmp_path, monkeypatch, crashed_snapshot):
    from dataflows import sold_out
    from utopia.models import Email

    records = [Stream(f"s{i}", "c1", "a1") for i in range(3)] + [
        Email("m1", "c1", "before@c1.io"),
        Event("e1", "a1", "v1", 5, "2027-03-01T20:00:00Z"),
        Email("m2", "c1", "after@c1.io"),
        Event("e2", "a1", "v1", 5, "2027-03-02T20:00:00Z"),
    ]
    io = run_with_crash(sold_out.build, records, tmp_path, monkeypatch, crashed_snapshot)
    assert sorted({(v.eventid, v.email) for v in io.values("event-streamer-alerts")}) == [
        ("e1", "before@c1.io"),
        ("e2", "after@c1.io"),
    ]


def test_a_recovery_store_resumes_only_with_the_shard_count_it_was_written_with(monkeypatch):
    """A key's shard depends on UTOPIA_SHARDS: under another count its state would sit in the wrong shard."""
    monkeypatch.setattr(shards.ShardLogic, "snapshots", True)
    step = shards.KeyedStep("flow", lambda key: [], None, (), None)
    shard = shards.ShardLogic(None, step)
    shard.states["c1"] = [7]
    snapshot = shard.snapshot()
    assert shards.ShardLogic(snapshot, step).states == {"c1": [7]}
    monkeypatch.setattr(shards, "SHARDS", shards.SHARDS + 8)
    with pytest.raises(ConfigError, match=r"written with UTOPIA_SHARDS=24 and this run has 32"):
        shards.ShardLogic(snapshot, step)


def test_a_recovery_store_of_an_earlier_version_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(shards.ShardLogic, "snapshots", True)
    step = shards.KeyedStep("flow", lambda key: [], None, (), None)
    earlier = pickle.dumps(({"c1": [7]}, {}))  # (states, changed): no shard count
    with pytest.raises(ConfigError, match="written by an earlier version"):
        shards.ShardLogic(earlier, step)
