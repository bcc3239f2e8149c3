"""Tickets are confirmed while their event has capacity, rejected after; early tickets wait."""

from collections import Counter

from hypothesis import given, settings

from dataflows import purchase_event_ticket
from tests import reference
from tests.conftest import plain
from tests.strategies import ticket_log
from utopia.io.testing import TestingIO, kafka_records, run
from utopia.models import Event, Ticket
from utopia.rules.tickets import DeskTicket, TicketDesk, desk_tickets
from utopia.steps import wire


def event(capacity, eventid="e1"):
    return Event(eventid, artistid="a1", venueid="v1", capacity=capacity, eventdate="Mon Mar 01 20:00:00 UTC 2027")


def ticket(n, eventid="e1", customer="c1"):
    return Ticket(f"t{n}", customerid=customer, eventid=eventid, price=50.0)


def responses(records, workers=1):
    io = TestingIO(kafka_records(records))
    run(purchase_event_ticket.build(io), workers)
    return [(key, value.status, value.remaining) for key, value in io.outputs["ticket-response"]]


def test_first_capacity_tickets_are_confirmed_the_rest_rejected():
    assert responses([event(2), ticket(1), ticket(2), ticket(3)]) == [
        ("t1", "CONFIRMED", 1),
        ("t2", "CONFIRMED", 0),
        ("t3", "REJECTED", 0),
    ]


def test_tickets_before_their_event_wait_for_it_in_order():
    assert responses([ticket(1), ticket(2), event(1), ticket(3)]) == [
        ("t1", "CONFIRMED", 0),
        ("t2", "REJECTED", 0),
        ("t3", "REJECTED", 0),
    ]


def test_raised_capacity_confirms_again_and_lowered_capacity_rejects():
    assert responses([event(1), ticket(1), ticket(2), event(3), ticket(3), event(1), ticket(4)]) == [
        ("t1", "CONFIRMED", 0),
        ("t2", "REJECTED", 0),
        ("t3", "CONFIRMED", 1),
        ("t4", "REJECTED", 0),
    ]


def test_response_carries_ticket_event_and_customer():
    io = TestingIO(kafka_records([event(5), ticket(1, customer="c9")]))
    run(purchase_event_ticket.build(io))
    assert [plain(v) for v in io.values("ticket-response")] == [
        {"ticketid": "t1", "eventid": "e1", "customerid": "c9", "status": "CONFIRMED", "remaining": 4},
    ]


def test_events_are_independent():
    # Responses of different events may interleave in any order; each event's own are in order.
    assert sorted(responses([event(1, "e1"), event(1, "e2"), ticket(1, "e1"), ticket(2, "e2"), ticket(3, "e1")])) == [
        ("t1", "CONFIRMED", 0),
        ("t2", "CONFIRMED", 0),
        ("t3", "REJECTED", 0),
    ]


def test_ticket_without_event_id_is_a_dead_letter():
    io = TestingIO(kafka_records([event(1), Ticket("t1", customerid="c1", eventid=None)]))
    run(purchase_event_ticket.build(io))
    assert io.outputs["ticket-response"] == []
    assert [d.error for d in io.values("dead-letters")] == ["missing field: Object missing required field `eventid`"]


@settings(max_examples=40)  # each example runs whole dataflows
@given(log=ticket_log())
def test_every_response_exactly_once_as_the_reference_says(log, workers):
    io = TestingIO(kafka_records(log), batch_size=3)
    run(purchase_event_ticket.build(io), workers)
    good = [r for r in log if isinstance(r, (Event, Ticket))]
    expected = Counter((k, repr(sorted(v.items()))) for k, v in reference.ticket_responses(good))
    actual = Counter((k, repr(sorted(plain(v).items()))) for k, v in io.outputs["ticket-response"])
    assert actual == expected


def test_only_what_the_response_needs_of_a_ticket_goes_to_its_desk():
    # About half the tickets cross to another process: each takes its id and customer, not the whole record.
    tickets = [ticket(1), Ticket("t2", customerid=None, eventid="e1", price=None)]
    assert desk_tickets(tickets) == [DeskTicket("t1", "c1"), DeskTicket("t2", None)]
    desk = TicketDesk("e1")
    assert list(desk.apply(event(1))) == []
    decided = [out for t in desk_tickets(tickets) for out in desk.apply((None, t))]
    assert [(key, plain(value)) for key, value in decided] == [
        ("t1", {"ticketid": "t1", "eventid": "e1", "customerid": "c1", "status": "CONFIRMED", "remaining": 0}),
        ("t2", {"ticketid": "t2", "eventid": "e1", "customerid": None, "status": "REJECTED", "remaining": 0}),
    ]
    whole = wire.encode([("0", [("e1", t) for t in tickets])])
    slim = wire.encode([("0", [("e1", t) for t in desk_tickets(tickets)])])
    assert wire.decode(slim) == [("0", [("e1", DeskTicket("t1", "c1")), ("e1", DeskTicket("t2", None))])]
    assert len(slim) < len(whole) - 2 * len(b"customerid")  # field names and the price stay home


def test_ticket_without_customer_is_still_decided():
    # Only foreign keys that relate records are required (docs/outputs.md#dead-letters); the customer is just echoed.
    io = TestingIO(kafka_records([event(1), Ticket("t1", customerid=None, eventid="e1")]))
    run(purchase_event_ticket.build(io))
    assert [plain(v) for v in io.values("ticket-response")] == [
        {"ticketid": "t1", "eventid": "e1", "customerid": None, "status": "CONFIRMED", "remaining": 0},
    ]


def test_the_seed_workshops_scenario_with_an_event_dated_today():
    # The seed workshop's PurchaseEventTicketTest sends its event with `"eventdate": "today"`: a date
    # in no known form leaves the event usable, so its capacity of 5 decides the 8 tickets.
    event_today = ("events", b'{"id":"e1","artistid":"a1","venueid":"v1","capacity":5,"eventdate":"today"}')
    tickets = [
        ("tickets", f'{{"id":"t{n}","customerid":"c{n}","eventid":"e1","price":35.5}}'.encode()) for n in range(1, 9)
    ]
    for records in ([event_today] + tickets, tickets + [event_today]):
        io = TestingIO(kafka_records(records))
        run(purchase_event_ticket.build(io))
        assert [(key, value.status, value.remaining) for key, value in io.outputs["ticket-response"]] == [
            ("t1", "CONFIRMED", 4),
            ("t2", "CONFIRMED", 3),
            ("t3", "CONFIRMED", 2),
            ("t4", "CONFIRMED", 1),
            ("t5", "CONFIRMED", 0),
            ("t6", "REJECTED", 0),
            ("t7", "REJECTED", 0),
            ("t8", "REJECTED", 0),
        ]
        assert io.outputs["dead-letters"] == []


def test_tickets_still_waiting_at_the_end_are_dead_letters_with_the_reason():
    io = TestingIO(kafka_records([ticket(1, "e7"), event(1), ticket(2), ticket(3, "e7")]))
    run(purchase_event_ticket.build(io), workers=3)
    assert [(key, value.status) for key, value in io.outputs["ticket-response"]] == [("t2", "CONFIRMED")]
    assert sorted((key, plain(value)) for key, value in io.outputs["dead-letters"]) == [
        (
            f"t{n}",
            {
                "dataflow": "purchase_event_ticket",
                "topic": "data-demo-tickets",
                "partition": 0,
                "offset": offset,
                "key": f"t{n}",
                "value": f'{{"id":"t{n}","customerid":"c1","eventid":"e7","price":50.0}}',
                "error": "waited for event e7, which never arrived",
            },
        )
        for n, offset in ((1, 0), (3, 2))
    ]
