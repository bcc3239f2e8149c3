"""Global totals: distinct customers and events, streams and tickets as records, events that took place by the clock."""

from datetime import UTC, datetime, timedelta

import pytest
from bytewax.testing import TestingSource, TimeTestingGetter
from hypothesis import given, settings

from dataflows import global_totals
from tests import reference
from tests.conftest import plain
from tests.strategies import global_totals_log
from utopia.codec import Decoder, RecordBatch
from utopia.config import Topics
from utopia.io.testing import TestingIO, kafka_records, run
from utopia.models import Customer, Event, GlobalTotals, Stream, Ticket
from utopia.rules.totals import (
    TOTALS,
    Clock,
    Counted,
    CustomerSeen,
    EventPart,
    EventTotals,
    Totals,
    added_up,
    streams_read,
)
from utopia.tools.generator import Sizes, generate

NOW = datetime(2027, 6, 26, 21, 19, 45, 676000, tzinfo=UTC)
PAST, FUTURE = "2027-06-26 21:19:45.675", "2027-06-26 21:19:45.677"  # a millisecond either side of NOW
FIXED = Clock(now=lambda: NOW)


def event(eventid="e1", date=FUTURE):
    return Event(eventid, artistid="a1", venueid="v1", capacity=10, eventdate=date)


def ticket(ticketid, eventid="e1"):
    return Ticket(ticketid, customerid="c1", eventid=eventid, price=20.0)


def run_totals(records, workers=1, clock=FIXED, batch_size=4):
    io = TestingIO(kafka_records(records), batch_size=batch_size)
    run(global_totals.build(io, clock), workers)
    return io


def counts(value) -> dict:
    """A global-totals value without `as_of` (when it was computed)."""
    return {k: v for k, v in plain(value).items() if k != "as_of"}


def final(records, workers=1, clock=FIXED, batch_size=4) -> dict:
    io = run_totals(records, workers, clock, batch_size)
    assert list(io.latest("global-totals")) == [TOTALS]
    return counts(io.latest("global-totals")[TOTALS])


def totals(customers=0, streams=0, events=0, tickets=0, events_occurred=0) -> dict:
    return {
        "customers": customers,
        "streams": streams,
        "events": events,
        "tickets": tickets,
        "events_occurred": events_occurred,
    }


# --- the rules, through the dataflow ------------------------------------------------------------


def test_a_customer_re_sent_counts_once(workers):
    records = [Customer("c1", fname="Ann"), Customer("c2"), Customer("c1", fname="Anna"), Customer("c1")]
    for batch_size in (1, 4):  # re-sent in a later flush, and within one
        assert final(records, workers, batch_size=batch_size) == totals(customers=2)


def test_streams_and_tickets_count_records_even_with_the_same_id(workers):
    records = [
        event("e1"),
        Stream("s1", "c1", "a1"),
        Stream("s1", "c1", "a1"),
        Stream("s2"),  # without customer or artist: still a stream
        ticket("t1"),
        ticket("t1"),
        ticket("t2"),
    ]
    assert final(records, workers) == totals(streams=3, events=1, tickets=3)


def test_tickets_wait_for_their_event_and_those_of_an_event_that_never_comes_are_dead_letters(workers):
    records = [ticket("t1", "e1"), ticket("t2", "e9"), ticket("t3", "e1"), event("e1"), ticket("t4", "e1")]
    io = run_totals(records, workers)
    assert counts(io.latest("global-totals")[TOTALS]) == totals(events=1, tickets=3)
    assert [(d.key, d.topic, d.offset, d.error) for d in io.values("dead-letters")] == [
        ("t2", "data-demo-tickets", 1, "waited for event e9, which never arrived")
    ]


def test_a_ticket_without_event_is_a_dead_letter():
    io = run_totals([event("e1"), Ticket("t1", customerid="c1", eventid=None)])
    assert counts(io.latest("global-totals")[TOTALS]) == totals(events=1)
    assert [d.error for d in io.values("dead-letters")] == ["missing field: Object missing required field `eventid`"]


def test_an_event_counts_as_occurred_only_if_its_date_is_before_now():
    records = [event("e1", PAST), event("e2", "2027-06-26T21:19:45.676Z"), event("e3", FUTURE)]
    assert final(records) == totals(events=3, events_occurred=1)


def test_an_event_moved_into_the_past_and_back_moves_with_it(workers):
    assert final([event("e1", FUTURE), event("e1", PAST)], workers) == totals(events=1, events_occurred=1)
    assert final([event("e1", FUTURE), event("e1", PAST), event("e1", FUTURE)], workers) == totals(events=1)


def test_an_event_whose_date_is_unknown_never_counts_as_occurred():
    assert final([event("e1", PAST), event("e1", "today"), event("e2", None)]) == totals(events=2)


def test_events_occurred_advances_as_time_passes_with_no_input():
    time = TimeTestingGetter(NOW)
    clock = Clock(now=time.get, every=timedelta(milliseconds=20))
    first = kafka_records([Customer("c1"), event("e1", "2027-06-26 23:00:00.0")])
    later = kafka_records([Customer("c2")])

    def script():
        yield RecordBatch(first, 0, 0)
        yield TestingSource.PAUSE(timedelta(milliseconds=500))  # the first values go out
        time.advance(timedelta(hours=2))  # the event's date passes; no record comes
        yield TestingSource.PAUSE(timedelta(milliseconds=500))
        yield RecordBatch(later, 0, len(first))

    io = TestingIO([])
    io.source = lambda dataflow, topics: TestingSource(script())
    run(global_totals.build(io, clock))
    values = [plain(v) for v in io.values("global-totals")]
    moved = next(v for v in values if v["events_occurred"] == 1)
    assert counts(moved) == totals(customers=1, events=1, events_occurred=1)  # before the next record
    assert moved["as_of"] == "2027-06-26T23:19:45.676Z"
    assert totals(customers=1, events=1) in map(counts, values[: values.index(moved)])
    assert counts(values[-1]) == totals(customers=2, events=1, events_occurred=1)


def test_nothing_is_written_within_the_flush_interval_but_once_at_the_end():
    io = TestingIO(kafka_records([Customer("c1"), Stream("s1"), event("e1", PAST), ticket("t1")]), batch_size=1)
    io.changelog = timedelta(hours=1)  # nothing is flushed before the end
    run(global_totals.build(io, FIXED), workers=3)
    assert [(k, plain(v)) for k, v in io.outputs["global-totals"]] == [
        (
            "totals",
            {
                "customers": 1,
                "streams": 1,
                "events": 1,
                "tickets": 1,
                "events_occurred": 1,
                "as_of": "2027-06-26T21:19:45.676Z",
            },
        )
    ]


@settings(max_examples=40)  # each example runs whole dataflows
@given(log=global_totals_log())
def test_the_final_totals_are_the_references(log, workers):
    io = run_totals(log, workers)
    good = [r for r in log if not isinstance(r, tuple)]
    expected = reference.global_totals(good, NOW)
    latest = io.latest("global-totals")
    assert (counts(latest[TOTALS]) if latest else None) == expected
    known = {r.id for r in good if isinstance(r, Event)}
    assert sorted(d.key for d in io.values("dead-letters") if d.error.startswith("waited")) == sorted(
        r.id for r in good if isinstance(r, Ticket) and r.eventid not in known
    )


@pytest.mark.parametrize("workers", [2, 4])
def test_a_generated_world_gives_the_references_totals_on_more_workers(workers):
    world = [g.value for g in generate(Sizes(customers=50, artists=8, events=30, tickets=400, streams=900), seed=3)]
    mid_world = datetime(2026, 11, 15, tzinfo=UTC)  # some of its events before, some after
    expected = reference.global_totals(world, mid_world)
    assert 0 < expected["events_occurred"] < expected["events"]
    assert final(world, workers, Clock(now=lambda: mid_world), batch_size=50) == expected


# --- the pieces on their own --------------------------------------------------------------------


def test_a_customer_changes_once_and_reports_one_new_customer():
    seen = CustomerSeen("c1")
    assert [seen.apply(None), seen.apply(None)] == [True, False]
    assert seen.value() == (TOTALS, Counted(customers=1))


def test_a_shards_new_customers_travel_as_one_count():
    assert added_up([(TOTALS, Counted(customers=1))] * 3 + [(TOTALS, Counted(streams=2))]) == [
        (TOTALS, Counted(customers=3, streams=2))
    ]


def test_a_batch_reports_its_streams_and_zero_without_any():
    decoder = Decoder("global_totals", Topics(), global_totals.READS)
    mixed = decoder.decode(RecordBatch(kafka_records([Stream("s1"), Customer("c1"), Stream("s1"), event()])))
    assert streams_read(mixed) == [(TOTALS, Counted(streams=2))]
    assert streams_read(decoder.decode(RecordBatch(kafka_records([Customer("c1")])))) == [(TOTALS, Counted())]


def test_an_events_part_holds_tickets_until_it_is_known_and_follows_its_date():
    part = EventTotals("e1")
    t1, t2 = (None, ticket("t1")), (None, ticket("t2"))
    assert [part.apply(t1), part.apply(t2)] == [False, False]
    assert part.apply(Event("e1", eventdate="2027-01-01T00:00:00Z"))  # known: both tickets count
    assert part.value() == (TOTALS, EventPart("e1", datetime(2027, 1, 1, tzinfo=UTC), 2))
    assert part.apply((None, ticket("t3")))
    assert not part.apply(Event("e1", capacity=99, eventdate="2027-01-01T00:00:00Z"))  # the same date
    assert part.apply(Event("e1", eventdate=None))
    assert part.value() == (TOTALS, EventPart("e1", None, 3))
    assert part.unfinished() == []


def test_tickets_of_an_event_never_known_are_unfinished():
    part = EventTotals("e9")
    raw = kafka_records([ticket("t1", "e9")])[0]
    part.apply((raw, ticket("t1", "e9")))
    assert part.unfinished() == [(raw, "waited for event e9, which never arrived")]
    assert part.unfinished() == []


def test_the_totals_add_up_partial_counts_and_replace_an_events_part():
    time = TimeTestingGetter(NOW)
    state = Totals(TOTALS, Clock(now=time.get))
    past, future = NOW - timedelta(days=1), NOW + timedelta(hours=1)
    assert state.apply(Counted(customers=2, streams=5))
    assert not state.apply(Counted())
    assert state.apply(EventPart("e1", future, 3))
    assert state.apply(EventPart("e2", past, 1))
    assert not state.apply(EventPart("e2", past, 1))
    assert state.value() == (TOTALS, GlobalTotals(2, 5, 2, 4, 1, "2027-06-26T21:19:45.676Z"))
    assert state.apply(EventPart("e1", past, 4))  # moved into the past, one more ticket
    assert state.apply(EventPart("e2", None, 1))  # its date is unknown now
    assert state.value() == (TOTALS, GlobalTotals(2, 5, 2, 5, 1, "2027-06-26T21:19:45.676Z"))


def test_the_totals_recheck_says_when_time_alone_changed_them():
    time = TimeTestingGetter(NOW)
    state = Totals(TOTALS, Clock(now=time.get))
    state.apply(EventPart("e1", NOW + timedelta(minutes=1), 0))
    state.apply(EventPart("e2", NOW + timedelta(minutes=2), 0))
    state.value()
    assert not state.recheck()
    time.advance(timedelta(minutes=1))  # e1 is now, not before now
    assert not state.recheck()
    time.advance(timedelta(milliseconds=1))
    assert state.recheck()
    assert not state.recheck()
    assert state.value()[1].events_occurred == 1
    state.apply(EventPart("e1", NOW + timedelta(days=1), 0))  # moved back into the future
    assert state.value()[1].events_occurred == 0
    time.advance(timedelta(days=2))
    assert state.recheck()
    assert state.value()[1].events_occurred == 2
