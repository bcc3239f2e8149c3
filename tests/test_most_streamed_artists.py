"""Most streamed artists: the top 3 overall, customers by their #1 artist, and the trending artists of each hour."""

import logging
from datetime import UTC, datetime, timedelta

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from hypothesis import given, settings

from dataflows import most_streamed_artists
from tests import reference
from tests.conftest import plain
from tests.strategies import streams_and_artists_log
from utopia.codec import RecordBatch
from utopia.io.testing import TestingIO, kafka_records, run
from utopia.models import Artist, Stream
from utopia.rules import trending as trending_rules
from utopia.rules.ranking import TopN
from utopia.rules.trending import CLOCK, HOUR_MS, ArtistNames, CaughtUp, Closings, HourCounts
from utopia.steps import Placed


def streams(customer, artist, count, at=None):
    return [Stream(f"s-{customer}-{artist}-{at}-{i}", customer, artist, at) for i in range(count)]


def run_it(records, workers=1, batch_size=4):
    io = TestingIO(kafka_records(records), batch_size=batch_size)
    run(most_streamed_artists.build(io), workers)
    return io


def top(io):
    return [(t["artistid"], t["name"], t["streams"]) for t in plain(io.latest("top-artists")["global"])["top"]]


def test_the_three_most_streamed_artists_over_all_customers_ties_to_who_got_there_first():
    records = streams("c1", "a1", 2) + streams("c2", "a2", 3) + streams("c3", "a3", 1) + streams("c1", "a4", 2)
    assert top(run_it(records)) == [("a2", None, 3), ("a1", None, 2), ("a4", None, 2)]
    # a3 catches up with a1 and a4 but got to 2 last; then a4 reaches 3, after a2.
    later = records + streams("c4", "a3", 1) + streams("c5", "a4", 1)
    assert top(run_it(later, workers=3)) == [("a2", None, 3), ("a4", None, 3), ("a1", None, 2)]


def test_names_come_when_the_artist_does_and_a_rename_in_the_top_is_written_again():
    records = streams("c1", "a1", 2) + streams("c1", "a2", 1) + [Artist("a1", "Da Vinci", "Pop")]
    io = run_it(records + [Artist("a9", "Nobody", "Pop"), Artist("a1", "Da Vinci Trio", "Pop")], batch_size=1)
    values = [[(t.artistid, t.name) for t in v.top] for v in io.values("top-artists")]
    assert values[-1] == [("a1", "Da Vinci Trio"), ("a2", None)]
    assert [("a1", "Da Vinci"), ("a2", None)] in values  # the first name was written before the rename


def test_customers_follow_their_number_one_artist_back_and_forth():
    records = (
        streams("c1", "a1", 2)
        + streams("c2", "a1", 1)  # c1 and c2: a1
        + streams("c1", "a2", 3)  # c1 moves to a2
        + streams("c1", "a1", 2)
    )  # and back to a1 (4 against 3)
    io = run_it(records, workers=3)
    assert {k: plain(v)["customers"] for k, v in io.latest("customers-by-top-artist").items()} == {
        "a1": ["c1", "c2"],
        "a2": [],
    }  # a2 lost its last customer: an empty list


def test_a_customers_number_one_changes_only_when_another_artist_passes_its_count():
    from utopia.rules.popularity import Joined, NumberOne

    fan = NumberOne("c1")
    told = [fan.apply(artist) for artist in ["a1", "a2", "a2", "a1", "a1", "a3", "a3", "a3", "a3", "a1"]]
    assert told == [
        (("a1", Joined("c1", True)),),
        (),
        (("a1", Joined("c1", False)), ("a2", Joined("c1", True))),  # 2 against 1
        (),  # a1 ties at 2: a2 got there first
        (("a2", Joined("c1", False)), ("a1", Joined("c1", True))),
        (),
        (),
        (),  # a3 ties at 3: a1 got there first
        (("a1", Joined("c1", False)), ("a3", Joined("c1", True))),
        (),  # a1 ties at 4
    ]


def test_a_snapshot_of_a_number_one_that_kept_the_top_three_resumes_with_its_number_one():
    import pickle

    from utopia.rules.popularity import Joined, NumberOne

    state = (None, {"n": 3, "counts": {"a1": 2, "a2": 1}, "top": ["a1", "a2"], "reached": None, "customerid": "c1"})

    class Before:  # as the version that kept a top 3 pickled it
        def __reduce__(self):
            return object.__new__, (NumberOne,), state

    fan = pickle.loads(pickle.dumps(Before()))
    assert (fan.customerid, fan.counts, fan.first) == ("c1", {"a1": 2, "a2": 1}, "a1")
    assert fan.apply("a2") == ()
    assert fan.apply("a2") == (("a1", Joined("c1", False)), ("a2", Joined("c1", True)))
    assert pickle.loads(pickle.dumps(fan)).first == "a2"


def test_number_one_ids_sort_as_strings():
    records = streams("c10", "a1", 1) + streams("c9", "a1", 1) + streams("098", "a1", 1)
    assert plain(run_it(records).latest("customers-by-top-artist")["a1"])["customers"] == ["098", "c10", "c9"]


def trending(io):
    return [(k, [(t.artistid, t.streams) for t in v.top]) for k, v in io.outputs["trending-artists"]]


def test_an_hour_closes_when_a_stream_five_minutes_past_its_end_comes():
    # The watermark is the newest stream time less 5 minutes: 11:05:00 closes 10:00-11:00, and a
    # stream of that hour after it is late; at 11:04:59 the hour is still open and it counts.
    for closing, counted in (("2026-11-25T11:05:00Z", [("a1", 2)]), ("2026-11-25T11:04:59Z", [("a1", 2), ("a2", 1)])):
        records = (
            streams("c1", "a1", 2, "2026-11-25T10:10:00Z")
            + streams("c2", "a3", 1, closing)
            + streams("c3", "a2", 1, "2026-11-25T10:59:59.500Z")
        )
        for batch_size in (1, len(records)):
            io = run_it(records, batch_size=batch_size)
            assert trending(io) == [("2026-11-25T10:00:00Z", counted), ("2026-11-25T11:00:00Z", [("a3", 1)])]
    [(key, value)] = run_it(streams("c1", "a1", 2, "2026-11-25T10:10:00Z")).outputs["trending-artists"]
    assert (key, plain(value)) == (
        "2026-11-25T10:00:00Z",
        {
            "window_start": "2026-11-25T10:00:00Z",
            "window_end": "2026-11-25T11:00:00Z",
            "top": [{"artistid": "a1", "name": None, "streams": 2}],
        },
    )


def test_every_open_hour_closes_at_the_end_of_the_input_with_the_artists_names():
    records = (
        [Artist("a1", "Da Vinci", "Pop")]
        + streams("c1", "a1", 1, "2026-11-25T09:30:00Z")
        + streams("c1", "a2", 1, "2026-11-25T09:40:00Z")
        + streams("c2", "a2", 1, "2026-11-25T09:50:00Z")
    )
    io = run_it(records, workers=3)
    [(key, value)] = io.outputs["trending-artists"]
    assert (key, [(t.artistid, t.name, t.streams) for t in value.top]) == (
        "2026-11-25T09:00:00Z",
        [("a2", None, 2), ("a1", "Da Vinci", 1)],
    )


def test_an_hours_record_names_its_artists_as_they_were_when_it_closed():
    records = (
        [Artist("a1", "Old", "Pop")]
        + streams("c1", "a1", 1, "2026-11-25T10:10:00Z")
        + [Artist("a1", "Mid", "Pop")]
        + streams("c2", "a2", 1, "2026-11-25T11:05:00Z")  # closes 10:00
        + [Artist("a1", "New", "Pop"), Artist("a2", "Later", "Pop")]
    )  # 11:00 closes at the end
    for batch_size in (1, 3, len(records)):
        for workers in (1, 3):
            io = run_it(records, workers=workers, batch_size=batch_size)
            assert [(k, [(t.artistid, t.name) for t in v.top]) for k, v in io.outputs["trending-artists"]] == [
                ("2026-11-25T10:00:00Z", [("a1", "Mid")]),
                ("2026-11-25T11:00:00Z", [("a2", "Later")]),
            ]


def test_a_late_stream_is_not_counted_and_is_logged(caplog):
    records = (
        streams("c1", "a1", 1, "2026-11-25T10:10:00Z")
        + streams("c1", "a1", 1, "2026-11-25T11:06:00Z")
        + streams("c2", "a2", 3, "2026-11-25T10:20:00Z")
    )  # its hour closed at 11:05
    for batch_size in (1, len(records)):
        with caplog.at_level(logging.WARNING, "utopia"):
            io = run_it(records, batch_size=batch_size)
        assert trending(io) == [("2026-11-25T10:00:00Z", [("a1", 1)]), ("2026-11-25T11:00:00Z", [("a1", 1)])]
        assert any("late stream" in r.getMessage() for r in caplog.records)
        caplog.clear()


def test_a_stream_without_a_time_goes_by_its_records_timestamp():
    io = run_it(streams("c1", "a1", 2))  # kafka_records stamps them 0 and 1 ms after 1970
    assert trending(io) == [("1970-01-01T00:00:00Z", [("a1", 2)])]


def test_raise_to_ranks_counts_sent_in_any_order_by_where_they_were_reached():
    board = TopN(2)
    assert board.raise_to("a", 2, reached=5)
    assert board.raise_to("b", 2, reached=3)  # b got to 2 first
    assert board.ranked() == [("b", 2), ("a", 2)]
    assert not board.raise_to("c", 2, reached=9)
    assert board.raise_to("c", 3, reached=10)
    assert board.ranked() == [("c", 3), ("b", 2)]


@settings(max_examples=40)  # each example runs whole dataflows
@given(log=streams_and_artists_log())
def test_matches_the_reference(log, workers):
    io = TestingIO(kafka_records(log), batch_size=4)
    run(most_streamed_artists.build(io), workers)
    good = [r for r in log if isinstance(r, (Stream, Artist))]
    stream_list = [r for r in good if isinstance(r, Stream)]
    if stream_list:
        assert plain(io.latest("top-artists")["global"]) == reference.top_artists(good)
    assert {k: plain(v) for k, v in io.latest("customers-by-top-artist").items()} == (
        reference.customers_by_top_artist(stream_list)
    )
    times = [n for n, r in enumerate(log) if not isinstance(r, tuple)]  # a record's time is its place in the log
    expected = reference.trending_artists(good, times)
    assert sorted((k, plain(v)) for k, v in io.outputs["trending-artists"]) == sorted(expected)


def test_the_hours_watermark_is_the_lowest_of_the_workers_clocks():
    # Workers read at their own pace: one ahead by more than the wait must not make the other's streams late.
    def hour_of(lane, at):
        ms = int(datetime.fromisoformat(at).timestamp() * 1000)
        return HourCounts(ms - ms % HOUR_MS, ms, lane, {"a1": 1}, {"a1": 0})

    clock = CLOCK.build(None)
    clock.before_batch()
    _, watermark = clock.on_item(hour_of(2, "2026-11-25T10:00:00+00:00"))
    assert watermark == datetime(2026, 11, 25, 9, 55, tzinfo=UTC)  # one lane: as Bytewax's EventClock
    _, watermark = clock.on_item(hour_of(1, "2026-11-25T10:30:00+00:00"))
    assert watermark == datetime(2026, 11, 25, 9, 55, tzinfo=UTC)  # lane 1 ahead: lane 2 holds it back
    at, watermark = clock.on_item(hour_of(2, "2026-11-25T10:01:00+00:00"))
    assert at >= watermark  # so lane 2's stream is on time
    _, watermark = clock.on_item(hour_of(2, "2026-11-25T10:40:00+00:00"))
    assert watermark == datetime(2026, 11, 25, 10, 25, tzinfo=UTC)  # now lane 1 is the lowest


def test_an_hour_no_stream_closes_is_woken_for_when_the_system_clock_closes_it():
    # Streams of 2020, read in 2026: the hour 10:00-11:00 closes when the watermark (10:25) has moved
    # 35 minutes on with the system clock, not at once (Bytewax would then wake the step at every step).
    clock = CLOCK.build(None)
    assert clock.to_system_utc(datetime(2020, 1, 1, 11, tzinfo=UTC)) is None  # no stream yet: nothing will close
    clock.before_batch()
    ms = int(datetime(2020, 1, 1, 10, 30, tzinfo=UTC).timestamp() * 1000)
    clock.on_item(HourCounts(ms - ms % HOUR_MS, ms, 1, {"a1": 1}, {"a1": 0}))
    assert clock.to_system_utc(datetime(2020, 1, 1, 11, tzinfo=UTC)) == clock.now + timedelta(minutes=35)
    assert clock.to_system_utc(datetime(2020, 1, 1, 10, 25, tzinfo=UTC)) == clock.now  # reached: due now


def ms_of(at):
    return int(datetime.fromisoformat(at).timestamp() * 1000)


def closed_hour(start, counts):
    return HourCounts(ms_of(start), ms_of(start) + 1, 1, counts, {artist: n for n, artist in enumerate(counts)})


def test_an_hour_the_wall_clock_closed_is_named_once_every_lane_is_caught_up():
    names = ArtistNames("global")
    names.apply(Placed(1, 5, Artist("a1", "Old", "Pop")))
    hour = closed_hour("2020-01-01T05:00:00+00:00", {"a1": 2})
    assert names.apply(hour) == []  # no lane heard of yet: a stream that closed it may be on the way
    assert names.apply(Closings(1, {ms_of("2020-01-01T05:00:00+00:00"): 3})) == []  # lane 1 streams on
    assert names.apply(Closings(2, {ms_of("2020-01-01T04:00:00+00:00"): 4})) == []  # and lane 2
    assert names.apply(CaughtUp(1)) == []  # lane 1 has read all there is, lane 2 still reads
    names.apply(Placed(1, 9, Artist("a1", "New", "Pop")))
    [(key, value)] = names.apply(CaughtUp(2))  # now no stream is on the way: the latest names
    assert (key, plain(value)) == (
        "2020-01-01T05:00:00Z",
        {
            "window_start": "2020-01-01T05:00:00Z",
            "window_end": "2020-01-01T06:00:00Z",
            "top": [{"artistid": "a1", "name": "New", "streams": 2}],
        },
    )
    later = closed_hour("2020-01-01T06:00:00+00:00", {"a2": 1})
    assert [plain(v)["window_start"] for _, v in names.apply(later)] == ["2020-01-01T06:00:00Z"]  # at once
    assert names.apply(Closings(2, {ms_of("2020-01-01T06:00:00+00:00"): 10})) == []  # lane 2 reads again
    assert names.apply(closed_hour("2020-01-01T07:00:00+00:00", {"a1": 1})) == []  # so it waits for it


def test_an_hour_a_stream_closed_keeps_the_names_of_then_when_the_lanes_catch_up():
    names = ArtistNames("global")
    names.apply(Placed(1, 1, Artist("a1", "Old", "Pop")))
    names.apply(Closings(1, {ms_of("2020-01-01T06:00:00+00:00"): 2}))  # the stream at 2 closed 05:00-06:00
    names.apply(Placed(1, 3, Artist("a1", "New", "Pop")))
    names.apply(CaughtUp(1))
    [(_, value)] = names.apply(closed_hour("2020-01-01T05:00:00+00:00", {"a1": 2}))
    assert [t.name for t in value.top] == ["Old"]


class Tailing(FixedPartitionedSource):
    """Batches of records, then, as a caught-up Kafka reader says, empty batches, the wall clock moving on by
    `step` each; it ends when that clock reaches `until`. Notes the clock when each output first came."""

    def __init__(self, batches, clock, step, until, outputs, seen):
        self.batches, self.clock, self.step, self.until, self.outputs, self.seen = (
            batches,
            clock,
            step,
            until,
            outputs,
            seen,
        )

    def list_parts(self):
        return ["tailing"]

    def build_part(self, step_id, for_part, resume_state):
        source = self

        class Part(StatefulSourcePartition):
            def next_batch(self):
                for record in source.outputs[len(source.seen) :]:
                    source.seen.append((source.clock[0], record))
                if source.batches:
                    return [source.batches.pop(0)]
                if source.clock[0] >= source.until:
                    raise StopIteration()
                source.clock[0] += source.step
                return [RecordBatch([], 0, position)]

            def snapshot(self):
                return None

        position = sum(len(batch) for batch in self.batches)
        return Part()


def test_while_tailing_an_hour_is_written_once_the_wall_clock_passes_its_end_and_the_wait(monkeypatch):
    clock = [datetime(2020, 1, 1, 5, 59, 30, tzinfo=UTC)]  # the streams are read at 05:59:30
    monkeypatch.setattr(trending_rules, "now", lambda: clock[0])
    records = kafka_records(
        [Artist("a1", "Da Vinci", "Pop")]
        + streams("c1", "a1", 2, "2020-01-01T05:10:00Z")
        + streams("c2", "a2", 1, "2020-01-01T05:59:00Z")
    )
    io = TestingIO(records)
    seen = []
    tailing = Tailing(
        [RecordBatch(records, 0, 0)],
        clock,
        timedelta(seconds=30),
        datetime(2020, 1, 1, 6, 15, tzinfo=UTC),
        io.outputs["trending-artists"],
        seen,
    )
    monkeypatch.setattr(io, "source", lambda dataflow, topics: tailing)
    run(most_streamed_artists.build(io))
    [(written_at, (key, value))] = seen  # written while the input was still open, not at its end
    # The watermark, 05:54 when the last stream was read at 05:59:30, passes 06:00 at 06:05:30.
    assert datetime(2020, 1, 1, 6, 5, 30, tzinfo=UTC) <= written_at < datetime(2020, 1, 1, 6, 15, tzinfo=UTC)
    assert (key, plain(value)) == (
        "2020-01-01T05:00:00Z",
        {
            "window_start": "2020-01-01T05:00:00Z",
            "window_end": "2020-01-01T06:00:00Z",
            "top": [
                {"artistid": "a1", "name": "Da Vinci", "streams": 2},
                {"artistid": "a2", "name": None, "streams": 1},
            ],
        },
    )


def test_a_snapshot_of_the_names_from_before_caught_up_resumes_with_no_lane_caught_up():
    import pickle

    from utopia.rules.trending import ArtistNames

    state = (None, {"names": {}, "closed_at": {3_600_000: 7}, "waiting": []})  # as the version before pickled it

    class Before:
        def __reduce__(self):
            return object.__new__, (ArtistNames,), state

    old = pickle.loads(pickle.dumps(Before()))
    assert type(old) is ArtistNames
    assert (old.caught_up, old.closed_at, old.waiting) == ({}, {3_600_000: 7}, [])
