"""Sold-out events: NEARLY_SOLD_OUT and SOLD_OUT once each, and the artist's top streamers told of new events."""

from collections import Counter

import pytest
from hypothesis import given, settings

from dataflows import sold_out
from tests import reference
from tests.conftest import plain
from tests.strategies import sold_out_log
from utopia.io.testing import TestingIO, kafka_records, run
from utopia.models import Email, Event, Stream, Ticket


def event(capacity, eventid="e1", artist="a1"):
    return Event(eventid, artistid=artist, venueid="v1", capacity=capacity, eventdate="Mon Mar 01 20:00:00 UTC 2027")


def tickets(count, eventid="e1", start=0):
    return [Ticket(f"t{eventid}-{start + i}", customerid=f"c{i}", eventid=eventid, price=20.0) for i in range(count)]


def run_sold_out(records, workers=1):
    io = TestingIO(kafka_records(records))
    run(sold_out.build(io), workers)
    return io


def alerts(records):
    """(ticket count when raised, kind, remaining) of each event alert."""
    return [(v.sold, v.alert, v.remaining) for v in run_sold_out(records).values("event-alerts")]


@pytest.mark.parametrize(
    ("capacity", "expected"),
    [
        (1, [(1, "NEARLY_SOLD_OUT", 0), (1, "SOLD_OUT", 0)]),  # one ticket crosses both, nearly first
        (2, [(2, "NEARLY_SOLD_OUT", 0), (2, "SOLD_OUT", 0)]),  # 1 of 2 is only 50%
        (10, [(9, "NEARLY_SOLD_OUT", 1), (10, "SOLD_OUT", 0)]),
        (1000, [(900, "NEARLY_SOLD_OUT", 100), (1000, "SOLD_OUT", 0)]),
    ],
)
def test_each_alert_once_when_its_threshold_is_first_reached(capacity, expected):
    assert alerts([event(capacity)] + tickets(capacity + 5)) == expected


def test_no_alert_below_ninety_percent():
    assert alerts([event(10)] + tickets(8)) == []
    assert alerts([event(1000)] + tickets(899)) == []


def test_tickets_before_the_event_are_counted_when_it_arrives():
    assert alerts(tickets(3) + [event(3)]) == [(3, "NEARLY_SOLD_OUT", 0), (3, "SOLD_OUT", 0)]


def test_tickets_past_capacity_raise_nothing_more():
    io = run_sold_out([event(2)] + tickets(6))
    assert [plain(v) for v in io.values("event-alerts")] == [
        {
            "eventid": "e1",
            "artistid": "a1",
            "venueid": "v1",
            "capacity": 2,
            "sold": 2,
            "remaining": 0,
            "alert": "NEARLY_SOLD_OUT",
        },
        {
            "eventid": "e1",
            "artistid": "a1",
            "venueid": "v1",
            "capacity": 2,
            "sold": 2,
            "remaining": 0,
            "alert": "SOLD_OUT",
        },
    ]


def test_capacity_raised_after_sell_out_never_repeats_an_alert():
    records = [event(2)] + tickets(2) + [event(20)] + tickets(20, start=2)
    assert alerts(records) == [(2, "NEARLY_SOLD_OUT", 0), (2, "SOLD_OUT", 0)]


def test_raised_capacity_before_the_thresholds_uses_the_latest_capacity():
    records = [event(10)] + tickets(5) + [event(20)] + tickets(15, start=5)
    assert alerts(records) == [(18, "NEARLY_SOLD_OUT", 2), (20, "SOLD_OUT", 0)]


def test_a_capacity_change_alone_raises_nothing():
    assert alerts([event(10)] + tickets(5) + [event(5)]) == []
    assert alerts([event(10)] + tickets(5) + [event(5)] + tickets(1, start=5)) == [
        (6, "NEARLY_SOLD_OUT", 0),
        (6, "SOLD_OUT", 0),
    ]


def streams(customer, artist, count):
    return [Stream(f"s-{customer}-{artist}-{i}", customer, artist) for i in range(count)]


def test_the_artists_top_three_streamers_hear_of_a_new_event_with_their_latest_email():
    records = (
        streams("c1", "a1", 5)
        + streams("c2", "a1", 3)
        + streams("c3", "a1", 4)
        + streams("c4", "a1", 1)
        + streams("c4", "a2", 9)
        + [Email("m1", "c1", "old@c1.io"), Email("m2", "c1", "new@c1.io"), Email("m3", "c2", "c2@x.io")]
        + [event(100, "e1", "a1"), event(50, "e1", "a1")]  # re-sent: not new again
    )
    io = run_sold_out(records)
    assert sorted((k, plain(v)) for k, v in io.outputs["event-streamer-alerts"]) == [
        (
            "c1",
            {
                "customerid": "c1",
                "email": "new@c1.io",
                "eventid": "e1",
                "artistid": "a1",
                "venueid": "v1",
                "eventdate": "2027-03-01T20:00:00Z",
                "streams": 5,
            },
        ),
        (
            "c2",
            {
                "customerid": "c2",
                "email": "c2@x.io",
                "eventid": "e1",
                "artistid": "a1",
                "venueid": "v1",
                "eventdate": "2027-03-01T20:00:00Z",
                "streams": 3,
            },
        ),
        (
            "c3",
            {
                "customerid": "c3",
                "email": None,
                "eventid": "e1",
                "artistid": "a1",
                "venueid": "v1",
                "eventdate": "2027-03-01T20:00:00Z",
                "streams": 4,
            },
        ),
    ]


def test_top_streamers_are_those_at_the_moment_the_event_is_first_seen():
    records = streams("c1", "a1", 2) + [event(10, "e1")] + streams("c2", "a1", 5) + [event(10, "e2")]
    io = run_sold_out(records)
    assert sorted((v.eventid, v.customerid, v.streams) for v in io.values("event-streamer-alerts")) == [
        ("e1", "c1", 2),
        ("e2", "c1", 2),
        ("e2", "c2", 5),
    ]


def test_an_artist_without_streams_has_nobody_to_tell():
    assert run_sold_out([event(10)]).outputs["event-streamer-alerts"] == []


def test_email_without_customer_is_a_dead_letter():
    io = run_sold_out([Email("m1", None, "x@y.z")])
    assert [d.error for d in io.values("dead-letters")] == ["missing field: Object missing required field `customerid`"]


def test_an_email_that_comes_after_the_event_is_not_on_its_alerts_even_in_one_batch():
    records = streams("c1", "a1", 2) + [
        Email("m1", "c1", "before@c1.io"),
        event(10, "e1"),
        Email("m2", "c1", "after@c1.io"),
        event(10, "e2"),
    ]
    for batch_size in (1, 3, len(records)):
        io = TestingIO(kafka_records(records), batch_size=batch_size)
        run(sold_out.build(io), workers=3)
        assert sorted((v.eventid, v.email) for v in io.values("event-streamer-alerts")) == [
            ("e1", "before@c1.io"),
            ("e2", "after@c1.io"),
        ], batch_size


def test_tickets_for_an_event_that_never_comes_are_dead_letters_at_the_end():
    io = run_sold_out([event(5, "e1")] + tickets(2, "e1") + tickets(2, "e9") + [event(None, "e8")] + tickets(1, "e8"))
    assert io.outputs["event-alerts"] == []
    assert sorted((d.value, d.offset, d.error) for d in io.values("dead-letters")) == [
        (
            '{"id":"te8-0","customerid":"c0","eventid":"e8","price":20.0}',
            4,
            "waited for the capacity of event e8, which never arrived (the event's capacity is null)",
        ),
        ('{"id":"te9-0","customerid":"c0","eventid":"e9","price":20.0}', 2, "waited for event e9, which never arrived"),
        ('{"id":"te9-1","customerid":"c1","eventid":"e9","price":20.0}', 3, "waited for event e9, which never arrived"),
    ]
    assert {(d.dataflow, d.topic, d.partition) for d in io.values("dead-letters")} == {
        ("sold_out", "data-demo-tickets", 0)
    }


def test_an_event_keeps_the_artist_and_venue_it_was_first_seen_with():
    moved = Event("e1", artistid="a2", venueid="v2", capacity=2, eventdate="2027-03-01 20:00:00.0")
    records = streams("c1", "a1", 1) + streams("c2", "a2", 1) + [event(10, "e1", "a1")] + tickets(1)
    io = run_sold_out(records + [moved] + tickets(1, start=1))
    assert [(v.artistid, v.venueid, v.capacity, v.alert) for v in io.values("event-alerts")] == [
        ("a1", "v1", 2, "NEARLY_SOLD_OUT"),
        ("a1", "v1", 2, "SOLD_OUT"),
    ]
    # The fans of the artist it was re-sent with hear nothing: it is not new, and not theirs.
    assert [(v.customerid, v.artistid) for v in io.values("event-streamer-alerts")] == [("c1", "a1")]


def canonical(outputs):
    return Counter((key, repr(sorted(plain(value).items()))) for key, value in outputs)


@settings(max_examples=40)  # each example runs whole dataflows
@given(log=sold_out_log())
def test_every_alert_exactly_once_as_the_reference_says(log, workers):
    io = TestingIO(kafka_records(log), batch_size=4)
    run(sold_out.build(io), workers)
    good = [r for r in log if not isinstance(r, tuple)]
    assert canonical(io.outputs["event-alerts"]) == canonical(reference.event_alerts(good))
    # Each customer's email as it was when the event was first seen (docs/outputs.md#ordering).
    assert canonical(io.outputs["event-streamer-alerts"]) == canonical(reference.streamer_alerts(good))
