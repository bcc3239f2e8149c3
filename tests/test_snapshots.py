"""A shard's snapshot pickles again only the buckets of keys touched since the last one, and resumes whole.

Every state pickled is counted (`Tally.pickled`), so these tests count the work a snapshot does
rather than time it.
"""

import pickle
from datetime import timedelta

import pytest

from utopia.config import ConfigError
from utopia.steps import Lookup, Placed, Sequenced, snapshots
from utopia.steps.sharding import SHARDS
from utopia.steps.shards import Front, JoinLogic, KeyedStep, Mark, OrderedLogic, ShardLogic

HOUR = timedelta(hours=1)
"""A changelog interval or recheck interval that does not come due during a test."""


class Tally:
    """A key's state that writes down everything done to it; each time it is pickled counts in `Tally.pickled`."""

    pickled = 0

    def __init__(self, key):
        self.key = key
        self.applied, self.read_at = [], []
        self.flushed = self.rechecked = 0
        self.ended = self.gave_up = False

    def apply(self, value):
        self.applied.append(value)
        return [(self.key, value)]

    def value(self):
        self.flushed += 1
        return self.key, len(self.applied)

    def read(self, lookup):
        self.read_at.append(lookup.position)
        return [(self.key, len(self.applied))]

    def recheck(self):
        self.rechecked += 1
        return True

    def at_end(self):
        self.ended = True
        return []

    def unfinished(self):
        self.gave_up = True
        return []

    def __getstate__(self):
        Tally.pickled += 1
        return self.__dict__

    def __eq__(self, other):
        return type(other) is Tally and vars(self) == vars(other)


@pytest.fixture(autouse=True)
def recovering(monkeypatch):
    monkeypatch.setattr(ShardLogic, "snapshots", True)
    Tally.pickled = 0


def step(changelog=None, recheck=None, ends=False, holds=()):
    return KeyedStep("test", Tally, changelog, holds, None, recheck, ends)


def keys(count):
    return [f"c{n}" for n in range(count)]


def fed(shard, keys, value="x"):
    """The shard, each key given `value` (at once, for a shard that applies in input order: on a lane of its own)."""
    if type(shard) is OrderedLogic:
        end = shard.arrivals + len(keys)
        items = [(key, Placed(1, shard.arrivals + n, value)) for n, key in enumerate(keys)]
        shard.on_batch([items + [(None, Mark(1, end)), *fronts(end, lane=1)]])
    else:
        shard.on_batch([[(key, value) for key in keys]])
    return shard


def fronts(end, lane=0):
    return [(None, Front(lane, end, shard)) for shard in range(SHARDS)]


def resumed(shard):
    """The shard as a new process builds it from the shard's snapshot now."""
    return type(shard)(shard.snapshot(), shard.step)


def previous_snapshot(shard):
    """A snapshot as the previous version took it: the shard's states in one dict."""
    return pickle.dumps((SHARDS, shard._snapshot_state()), pickle.HIGHEST_PROTOCOL)


def with_every_kind_of_state(logic):
    """A shard of each logic with states, and what waits outside them: unflushed keys, lookups, queued items."""
    shard = fed(logic(None, step(HOUR)), keys(3000))
    if logic is JoinLogic:  # a join's states answer lookups and send alerts: no changelog
        shard.on_batch([[("c1", Lookup(0, 5)), (None, Mark(0, 3)), ("c2", Lookup(0, 2))]])
        assert shard.pending == [("c1", Lookup(0, 5))] and shard.read_up_to == {0: 3}
    else:
        assert len(shard.changed) == 3000
    if logic is OrderedLogic:
        shard.on_batch([[("c1", Placed(0, 9, "own")), ("c1", Sequenced(0, 4, "item", 1)), (None, Mark(0, 6))]])
        shard.on_batch([fronts(8)[:-1]])
        assert len(shard.queues[0]) == 2
    return shard


LOGICS = [ShardLogic, JoinLogic, OrderedLogic]


@pytest.mark.parametrize("logic", LOGICS)
def test_a_shard_resumes_from_its_snapshot_with_equal_states_and_what_waits(logic):
    shard = with_every_kind_of_state(logic)
    assert resumed(shard)._snapshot_state() == shard._snapshot_state()
    fed(shard, keys(6000)[::7], "y")  # some keys changed, some new: into buckets already pickled
    again = resumed(shard)
    assert again._snapshot_state() == shard._snapshot_state()
    fed(again, keys(9000)[::5], "z")  # after a resume the buckets are remade
    assert resumed(again)._snapshot_state() == again._snapshot_state()


@pytest.mark.parametrize("logic", LOGICS)
def test_a_snapshot_of_the_previous_version_resumes_with_equal_states_and_what_waits(logic):
    shard = with_every_kind_of_state(logic)
    previous = logic(previous_snapshot(shard), shard.step)
    assert previous._snapshot_state() == shard._snapshot_state()
    fed(previous, ["c7", "new"], "y")
    assert resumed(previous)._snapshot_state() == previous._snapshot_state()


def test_a_snapshot_pickles_again_only_the_buckets_of_keys_touched_since_the_last():
    shard = fed(ShardLogic(None, step()), keys(10_000))
    shard.snapshot()
    assert Tally.pickled == 10_000
    Tally.pickled = 0
    shard.snapshot()
    assert Tally.pickled == 0  # nothing touched: the buckets' bytes as they were
    changed = ["c5", "c77", "c4242", "new"]
    fed(shard, changed, "y")
    snapshot = shard.snapshot()
    mask = shard.buckets.mask
    buckets = {hash(key) & mask for key in changed}
    assert Tally.pickled == sum(hash(key) & mask in buckets for key in shard.states)  # the changed keys' buckets
    assert 4 <= Tally.pickled < 200  # of 10,001 keys
    assert ShardLogic(snapshot, shard.step).states == shard.states


def test_a_growing_shard_is_bucketed_anew_and_resumes_whole():
    shard = fed(ShardLogic(None, step()), keys(10))
    shard.snapshot()
    few = shard.buckets.mask
    fed(shard, keys(20_000))
    assert resumed(shard).states == shard.states
    assert shard.buckets.mask > few
    Tally.pickled = 0
    fed(shard, ["c1"], "y")
    shard.snapshot()
    assert 1 <= Tally.pickled < 100


def test_a_lookup_answered_in_a_later_epoch_is_in_that_epochs_snapshot():
    shard = JoinLogic(None, step())
    shard.on_batch([[("c1", "x"), ("c1", Lookup(0, 5))]])  # its lane not read up to 5 yet: it waits
    shard.snapshot()
    shard.on_batch([[(None, Mark(0, 10))]])  # answered now, its key not in the batch
    again = resumed(shard)
    assert again.states["c1"].read_at == [5] and again.pending == []


def test_an_item_applied_in_a_later_epoch_is_in_that_epochs_snapshot():
    shard = OrderedLogic(None, step())
    shard.on_batch([[("c1", Sequenced(0, 5, "item", 1))]])  # waits for the own input and every shard before
    shard.snapshot()
    shard.on_batch([[(None, Mark(0, 10)), *fronts(10)]])  # applied now, its key not in the batch
    again = resumed(shard)
    assert [item.value for item in again.states["c1"].applied] == ["item"] and again.queues == {0: []}


def test_a_value_built_at_a_flush_in_a_later_epoch_is_in_that_epochs_snapshot():
    shard = fed(ShardLogic(None, step(HOUR)), ["c1"])
    shard.snapshot()
    shard.flush()
    again = resumed(shard)
    assert again.states["c1"].flushed == 1 and again.changed == {}


def test_a_recheck_is_in_the_next_snapshot():
    shard = fed(ShardLogic(None, step(HOUR, recheck=timedelta(0))), ["c1", "c2"])
    shard.snapshot()
    shard.on_notify()  # rechecks every key, flushes none: the flush is an hour away
    again = resumed(shard)
    assert [again.states[key].rechecked for key in ("c1", "c2")] == [1, 1] and list(again.changed) == ["c1", "c2"]


def test_what_states_say_and_give_up_at_the_end_of_the_input_is_in_the_next_snapshot_for_every_key():
    shard = fed(ShardLogic(None, step(ends=True, holds=(str,))), keys(100))
    shard.snapshot()
    shard.on_eof()
    assert all(state.ended and state.gave_up for state in resumed(shard).states.values())


def test_the_end_of_the_input_pickles_no_key_again_where_states_have_nothing_to_say_then():
    shard = fed(ShardLogic(None, step(HOUR)), keys(1000))
    shard.flush()
    shard.snapshot()
    shard.on_eof()  # flushes what changed since: nothing
    Tally.pickled = 0
    shard.snapshot()
    assert Tally.pickled == 0


def test_without_recovery_nothing_is_tracked_or_snapshotted(monkeypatch):
    monkeypatch.setattr(ShardLogic, "snapshots", False)
    shard = fed(ShardLogic(None, step()), keys(10))
    assert shard.buckets is None and shard.snapshot() is None and Tally.pickled == 0


class Plays:
    __slots__ = ("customerid", "streams")

    def __init__(self, customerid, streams=0):
        self.customerid, self.streams = customerid, streams


class RankedPlays(Plays):
    __slots__ = ("top",)

    def __init__(self, customerid, streams=0, top=None):
        super().__init__(customerid, streams)
        self.top = top or {}


class Count:
    __slots__ = "count"

    def __init__(self, count):
        self.count = count


class OwnPickling(Plays):
    __slots__ = ()

    def __getstate__(self):
        return (None, {"customerid": self.customerid, "streams": self.streams})


class Renamed(Plays):
    """A state whose `__setstate__` reads an older form (`plays` for `streams`), as pickle would call it."""

    __slots__ = ()
    restored = 0

    def __setstate__(self, state):
        Renamed.restored += 1
        slots = dict(state[1])
        if "plays" in slots:
            slots["streams"] = slots.pop("plays")
        for name, value in slots.items():
            setattr(self, name, value)


def slots_of(state):
    return type(state), [getattr(state, name, "unset") for name in ("customerid", "streams", "top", "count")]


@pytest.mark.parametrize(
    "bucket",
    [
        {f"c{n}": Plays(f"c{n}", n) for n in range(5)},
        {f"c{n}": RankedPlays(f"c{n}", n, {"a1": n, "a2": [n]}) for n in range(5)},  # slots of a base class too
        {f"c{n}": Count(n) for n in range(5)},  # one slot, named by a string
    ],
    ids=["slotted", "with a slotted base", "one slot"],
)
def test_a_bucket_of_one_slotted_class_is_pickled_as_rows_of_slot_values_and_comes_back_equal(bucket):
    data = snapshots.pickled(bucket)
    kind, names, keys, rows = pickle.loads(data)  # not a dict: rows, read in one C loop
    assert (kind, keys, len(rows)) == (type(bucket["c0"]), list(bucket), len(bucket))
    assert names == {Plays: ("customerid", "streams"), RankedPlays: ("customerid", "streams", "top")}.get(
        kind, ("count",)
    )
    back = snapshots.unpickled(data)
    assert list(back) == list(bucket)
    assert [slots_of(state) for state in back.values()] == [slots_of(state) for state in bucket.values()]


def test_a_state_with_its_own_setstate_is_restored_through_it_as_pickle_would():
    bucket = {f"c{n}": Renamed(f"c{n}", n) for n in range(5)}
    data = snapshots.pickled(bucket)
    assert isinstance(pickle.loads(data), tuple)
    Renamed.restored = 0
    back = snapshots.unpickled(data)
    assert Renamed.restored == 5
    assert [slots_of(state) for state in back.values()] == [slots_of(state) for state in bucket.values()]


@pytest.mark.parametrize(
    "bucket",
    [
        {"c1": Plays("c1", 1), "c2": RankedPlays("c2", 2)},  # two classes
        {"c1": OwnPickling("c1", 1)},  # a class that pickles itself
        {"c1": Plays("c1", 1), "c2": Plays.__new__(Plays)},  # a slot left unset
        {"c1": Tally("c1")},  # no slots
    ],
    ids=["two classes", "own pickling", "unset slot", "no slots"],
)
def test_any_other_bucket_is_pickled_as_a_dict_and_comes_back_equal(bucket):
    data = snapshots.pickled(bucket)
    assert isinstance(pickle.loads(data), dict)
    back = snapshots.unpickled(data)
    assert [slots_of(state) for state in back.values()] == [slots_of(state) for state in bucket.values()]


def test_every_state_of_every_dataflow_comes_back_from_its_bucket_as_it_was(monkeypatch):
    """Each shard's states restored from `pickled` are what pickle restores: pickled again, the same bytes.

    (Not the bytes of the states themselves: a set restored may iterate in another order, either way.)
    """
    from utopia.cli import dataflow_names, load_build
    from utopia.io.testing import TestingIO, kafka_records, run
    from utopia.tools.generator import Sizes, generate

    world = Sizes(customers=40, artists=8, events=12, tickets=300, streams=800, zipcodes=3)
    records = kafka_records([generated.value for generated in generate(world, 5)])
    on_eof, compared = ShardLogic.on_eof, set()

    def compared_at_the_end(shard):
        if shard.states:
            back = snapshots.unpickled(snapshots.pickled(shard.states))
            assert pickle.dumps(back, 5) == pickle.dumps(pickle.loads(pickle.dumps(shard.states, 5)), 5)
            compared.add(type(next(iter(shard.states.values()))).__name__)
        return on_eof(shard)

    monkeypatch.setattr(ShardLogic, "on_eof", compared_at_the_end)
    for name in dataflow_names():
        run(load_build(name)(TestingIO(records)), 1)
    assert len(compared) == 24  # every class of keyed state there is


def test_a_setstate_reads_a_bucket_written_when_its_class_had_other_slots_as_it_reads_pickles_of_then():
    written_then = (Renamed, ("customerid", "plays"), ["c1"], [("c1", 7)])  # `streams` was called `plays`
    [back] = snapshots.unpickled(pickle.dumps(written_then, pickle.HIGHEST_PROTOCOL)).values()
    assert slots_of(back) == (Renamed, ["c1", 7, "unset", "unset"])


def test_a_bucket_of_a_class_that_has_since_changed_its_slots_is_refused_in_one_line(monkeypatch):
    data = snapshots.pickled({"c1": RankedPlays("c1", 1)})
    monkeypatch.setattr(RankedPlays, "__slots__", ("top", "since"))  # what a later version's class would read
    with pytest.raises(ConfigError, match="RankedPlays kept other fields: start with a new recovery store"):
        snapshots.unpickled(data)
