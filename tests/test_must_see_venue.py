"""The must-see venue: the leading venue by distinct events and by distinct customers."""

import logging

import pytest
from hypothesis import given, settings

from dataflows import must_see_venue
from tests import reference
from tests.conftest import plain
from tests.strategies import must_see_venue_log
from utopia.io.testing import TestingIO, kafka_records, run
from utopia.models import Event, Ticket, Venue
from utopia.rules.venues import KnownVenues, NewEvent, NewHolder, TicketAtVenue, VenueCounts, VenueLeader, VenueTotals
from utopia.steps import Placed


def run_it(records, workers=1, batch_size=4):
    io = TestingIO(kafka_records(records), batch_size=batch_size)
    run(must_see_venue.build(io), workers)
    return io


def leaders(io):
    return {key: plain(value) for key, value in io.latest("must-see-venue").items()}


def lead(metric, venueid, name, count):
    return {"metric": metric, "venueid": venueid, "name": name, "count": count}


def event(eventid, venueid):
    return Event(eventid, artistid="a1", venueid=venueid, capacity=100)


def ticket(ticketid, customerid, eventid):
    return Ticket(ticketid, customerid=customerid, eventid=eventid, price=10.0)


EVERY_WAY = [(1, 1), (1, 3), (7, 1), (7, 3), (1000, 3)]  # (batch size, workers)


def test_equal_counts_go_to_the_venue_that_reached_them_first():
    records = [
        event("e1", "v1"),
        event("e2", "v2"),
        ticket("t1", "c1", "e2"),
        ticket("t2", "c2", "e1"),
        event("e3", "v2"),
        event("e4", "v1"),  # v2 reaches 2 events first
        ticket("t3", "c3", "e1"),
        ticket("t4", "c4", "e2"),
    ]  # v1 reaches 2 customers first
    for batch_size, workers in EVERY_WAY:
        expected = {"events": lead("events", "v2", None, 2), "customers": lead("customers", "v1", None, 2)}
        assert leaders(run_it(records, workers, batch_size)) == expected, (batch_size, workers)


def test_a_leader_is_overtaken_and_each_change_is_written():
    records = [
        event("e1", "v1"),
        ticket("t1", "c1", "e1"),
        event("e2", "v2"),
        ticket("t2", "c2", "e2"),
        ticket("t3", "c3", "e2"),
        event("e3", "v2"),
    ]
    io = run_it(records, batch_size=1)
    values = [plain(v) for v in io.values("must-see-venue")]
    assert [v for v in values if v["metric"] == "customers"] == [
        lead("customers", "v1", None, 1),
        lead("customers", "v2", None, 2),
    ]
    assert [v for v in values if v["metric"] == "events"] == [
        lead("events", "v1", None, 1),
        lead("events", "v2", None, 2),
    ]
    assert leaders(run_it(records, workers=3)) == {
        "events": lead("events", "v2", None, 2),
        "customers": lead("customers", "v2", None, 2),
    }


def test_a_customer_with_many_tickets_at_a_venue_counts_once_there():
    records = [
        event("e1", "v1"),
        event("e2", "v1"),
        event("e3", "v2"),
        ticket("t1", "c1", "e1"),
        ticket("t2", "c1", "e1"),
        ticket("t3", "c1", "e2"),  # c1 three times at v1
        ticket("t4", "c2", "e3"),
        ticket("t5", "c3", "e3"),
        ticket("t6", "c1", "e3"),
    ]
    for batch_size, workers in EVERY_WAY:
        assert leaders(run_it(records, workers, batch_size))["customers"] == lead("customers", "v2", None, 3)
    assert leaders(run_it(records[:6]))["customers"] == lead("customers", "v1", None, 1)


def test_tickets_before_their_event_wait_and_count_when_it_comes():
    # c1 and c2 come first, for e2; they count for v2 only when e2 comes, after v1 got to 2 customers.
    records = [
        ticket("t1", "c1", "e2"),
        ticket("t2", "c2", "e2"),
        event("e1", "v1"),
        ticket("t3", "c3", "e1"),
        ticket("t4", "c4", "e1"),
        event("e2", "v2"),
    ]
    for batch_size, workers in EVERY_WAY:
        io = run_it(records, workers, batch_size)
        assert leaders(io) == {"events": lead("events", "v1", None, 1), "customers": lead("customers", "v1", None, 2)}
        assert io.outputs["dead-letters"] == []
    # One more customer for e2 puts v2 ahead.
    assert leaders(run_it(records + [ticket("t5", "c5", "e2")]))["customers"] == lead("customers", "v2", None, 3)


def test_an_event_keeps_the_venue_it_was_first_seen_with(caplog):
    records = [event("e1", "v1"), event("e1", "v2"), ticket("t1", "c1", "e1"), event("e2", "v2")]
    with caplog.at_level(logging.WARNING, "utopia"):
        io = run_it(records, batch_size=1)
    assert leaders(io) == {"events": lead("events", "v1", None, 1), "customers": lead("customers", "v1", None, 1)}
    assert any("event e1 was re-sent with venue v2; it keeps venue v1" in r.getMessage() for r in caplog.records)
    # Re-sent with its own venue, an event is not a new one.
    again = [event("e1", "v1"), event("e2", "v2"), event("e3", "v2"), event("e1", "v1"), event("e1", "v1")]
    assert leaders(run_it(again, workers=3))["events"] == lead("events", "v2", None, 2)


def test_a_venue_name_comes_when_its_record_does_and_a_renamed_leader_is_written_again():
    records = [
        event("e1", "v1"),
        ticket("t1", "c1", "e1"),
        Venue("v1", name="Hall"),
        Venue("v2", name="Other"),
        Venue("v1", name="Big Hall"),
    ]
    io = run_it(records, batch_size=1)
    values = [plain(v) for v in io.values("must-see-venue") if v.metric == "events"]
    assert values == [
        lead("events", "v1", None, 1),
        lead("events", "v1", "Hall", 1),
        lead("events", "v1", "Big Hall", 1),
    ]
    assert leaders(run_it(records, workers=3)) == {
        "events": lead("events", "v1", "Big Hall", 1),
        "customers": lead("customers", "v1", "Big Hall", 1),
    }
    # A venue's record that comes first names it from the start; one of a venue that leads nothing writes nothing.
    named_first = [Venue("v1", name="Hall"), event("e1", "v1")]
    assert [plain(v) for v in run_it(named_first).values("must-see-venue")] == [lead("events", "v1", "Hall", 1)]


def test_a_venue_whose_record_never_comes_leads_without_a_name():
    records = [Venue("v2", name="Known"), event("e1", "v1"), event("e2", "v1"), event("e3", "v2")]
    assert leaders(run_it(records, workers=3)) == {"events": lead("events", "v1", None, 2)}


def test_tickets_of_an_event_that_never_comes_go_to_the_dead_letters_at_the_end():
    records = [event("e1", "v1"), ticket("t1", "c1", "e9"), ticket("t2", "c2", "e9"), ticket("t3", "c3", "e1")]
    for batch_size, workers in EVERY_WAY:
        io = run_it(records, workers, batch_size)
        assert leaders(io) == {"events": lead("events", "v1", None, 1), "customers": lead("customers", "v1", None, 1)}
        letters = sorted((key, plain(value)) for key, value in io.outputs["dead-letters"])
        assert letters == [
            (
                "t1",
                {
                    "dataflow": "must_see_venue",
                    "topic": "data-demo-tickets",
                    "partition": 0,
                    "offset": 0,
                    "key": "t1",
                    "value": '{"id":"t1","customerid":"c1","eventid":"e9","price":10.0}',
                    "error": "waited for event e9, which never arrived",
                },
            ),
            (
                "t2",
                {
                    "dataflow": "must_see_venue",
                    "topic": "data-demo-tickets",
                    "partition": 0,
                    "offset": 1,
                    "key": "t2",
                    "value": '{"id":"t2","customerid":"c2","eventid":"e9","price":10.0}',
                    "error": "waited for event e9, which never arrived",
                },
            ),
        ]


def test_events_need_a_venue_and_tickets_an_event_and_a_customer():
    records = [
        event("e1", "v1"),
        ("events", b'{"id":"e2","venueid":null}'),
        ("tickets", b'{"id":"t1","eventid":"e1"}'),
        ("tickets", b'{"id":"t2","customerid":"c1"}'),
        ticket("t3", "c2", "e1"),
    ]
    io = run_it(records)
    assert leaders(io) == {"events": lead("events", "v1", None, 1), "customers": lead("customers", "v1", None, 1)}
    errors = sorted(plain(v)["error"] for _, v in io.outputs["dead-letters"])
    assert len(errors) == 3 and all(e.startswith("missing field") for e in errors), errors
    assert [e.split("`")[1] for e in errors] == ["customerid", "eventid", "venueid"]


def test_a_ticket_goes_straight_to_its_venue_once_its_event_came_before_it():
    known = KnownVenues()
    known.learn([Placed(0, 110, event("e1", "v1")), Placed(0, 120, event("e1", "v2"))])  # e1 keeps its first venue
    tickets = [ticket("t1", "c1", "e1"), ticket("t2", "c2", "e1"), ticket("t3", "c3", "e9"), ticket("t4", "c4", "e1")]
    # At 105 and 110, t1 and t4 are not after e1 (at 110): they go through e1's step, t1 to wait there.
    # t2 (at 111) goes straight, counted at its own position, as e1's step would count it; e9 is not known.
    assert known.straight_to_venue(tickets, 100, [5, 11, 12, 10]) == [
        tickets[0],
        TicketAtVenue("v1", NewHolder("c2", 111)),
        tickets[2],
        tickets[3],
    ]
    # Learned later (from another worker's lane, say), e9 takes its tickets straight from then on.
    known.learn([Placed(1, 50, event("e9", "v3"))])
    assert known.straight_to_venue(tickets[2:3], 100, [12]) == [TicketAtVenue("v3", NewHolder("c3", 112))]


def test_venue_counts_are_right_whatever_order_the_facts_arrive_in():
    counts = VenueCounts("v1")
    assert counts.apply(NewHolder("c1", 50))
    assert counts.apply(NewHolder("c2", 30))
    assert not counts.apply(NewHolder("c1", 70))  # c1 already counts here: nothing goes on to the leaders
    assert counts.apply(NewHolder("c1", 10))  # c1's first ticket here arrived last: 2 customers at 30, not 50
    assert counts.apply(NewEvent(40)) and counts.apply(NewEvent(20))
    assert not counts.apply(None)  # no name, as before
    assert counts.value() == ("venues", VenueTotals("v1", 2, 40, 2, 30, None))


@pytest.mark.parametrize("order", [[0, 1, 2], [1, 0, 2], [1, 2, 0]])
def test_the_leader_is_the_same_whatever_order_the_venues_counts_arrive_in(order):
    # One venue's totals come in order; different venues' come in any order (from several workers).
    totals = [
        VenueTotals("v1", 2, 9, 0, -1, "One"),
        VenueTotals("v2", 1, 3, 0, -1, None),
        VenueTotals("v2", 2, 5, 0, -1, None),
    ]
    board = VenueLeader("events")
    for n in order:
        board.apply(totals[n])
    assert board.value() == ("events", must_see_venue_value("events", "v2", None, 2))
    nobody = VenueLeader("customers")
    assert not any(nobody.apply(t) for t in totals)  # no venue has a customer: nothing to write


def must_see_venue_value(metric, venueid, name, count):
    from utopia.models import MustSeeVenue

    return MustSeeVenue(metric, venueid, name, count)


@settings(max_examples=40)  # each example runs a whole dataflow
@given(log=must_see_venue_log())
def test_matches_the_reference(log, workers):
    io = TestingIO(kafka_records(log), batch_size=4)
    run(must_see_venue.build(io), workers)
    good = [r for r in log if isinstance(r, (Venue, Event, Ticket))]
    assert leaders(io) == reference.must_see_venue(good)
