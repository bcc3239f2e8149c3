"""Counting tickets through their event: the workshop's ArtistTicketCount exercise, built from the project's pieces.

A ticket names its event, and the event names its artist: `ThroughEvent` (utopia/rules/tickets.py) holds each
ticket at its event until the event comes, then sends it on keyed by the event's artist, where `items_per_key`
counts it. This is the whole dataflow a contributor writes (docs/adding-a-dataflow.md).
"""

import pickle

import pytest
from bytewax.dataflow import Dataflow

from utopia.io.testing import TestingIO, kafka_records, run
from utopia.models import Event, Output, Ticket
from utopia.rules.tickets import ThroughEvent
from utopia.rules.venues import EventVenue
from utopia.steps import FlowIO, Out, items_per_key, keyed_state, read, write
from utopia.steps.keys import BY_EVENT


class ArtistTicketCount(Output, frozen=True):
    artistid: str
    tickets: int


class TicketsReachTheirArtist(ThroughEvent[None]):
    """Per event: its tickets go on to its artist, one count each."""

    __slots__ = ("eventid", "to", "held")

    names = "artistid"
    waits = "tickets wait for their event's artist"

    def passed(self, value: None, position: int) -> int:
        return 1


class TicketsOfArtist:
    """One artist's tickets, a changelog."""

    __slots__ = ("artistid", "tickets")

    def __init__(self, artistid: str):
        self.artistid, self.tickets = artistid, 0

    def apply(self, counted: int) -> bool:
        self.tickets += counted
        return True

    def value(self) -> Out:
        return self.artistid, ArtistTicketCount(self.artistid, self.tickets)


def nothing_of_a_ticket(record: Event | Ticket) -> Event | None:
    return record if isinstance(record, Event) else None


def build(io: FlowIO) -> Dataflow:
    flow = Dataflow("artist_ticket_count")
    records = read("events_tickets", flow, io, {Event: ["artistid"], Ticket: ["eventid"]})
    passed = keyed_state(
        "tickets_through_their_event",
        records,
        BY_EVENT,
        TicketsReachTheirArtist,
        value=nothing_of_a_ticket,
        dead_letters=io,
    )
    counts = items_per_key("tickets_per_artist", passed, TicketsOfArtist, changelog=io.changelog)
    write("artist_ticket_count", counts, io, "artist-ticket-count")
    return flow


def ticket(ticketid: str, eventid: str) -> Ticket:
    return Ticket(ticketid, customerid="c1", eventid=eventid, price=10.0)


@pytest.mark.parametrize("workers", [1, 3])
def test_tickets_count_for_their_events_artist_even_when_they_come_first(workers):
    records = [
        ticket("t1", "e1"),  # before its event: it waits
        Event("e1", artistid="a1", venueid="v1", capacity=10),
        ticket("t2", "e1"),
        Event("e2", artistid="a2", venueid="v1", capacity=10),
        ticket("t3", "e2"),
        Event("e1", artistid="a9", venueid="v1", capacity=10),  # re-sent with another artist: it keeps a1
        ticket("t4", "e1"),
        ticket("t5", "e-never"),  # its event never comes: a dead letter at the end
    ]
    io = TestingIO(kafka_records(records), batch_size=2)
    run(build(io), workers)
    assert io.latest("artist-ticket-count") == {"a1": ArtistTicketCount("a1", 3), "a2": ArtistTicketCount("a2", 1)}
    [dead] = io.values("dead-letters")
    assert (dead.key, dead.error) == ("t5", "waited for event e-never, which never arrived")


def test_with_no_cache_every_ticket_is_one_more_record_of_its_artist(monkeypatch):
    records = [
        ticket("t1", "e1"),
        ticket("t2", "e1"),
        Event("e1", artistid="a1", venueid="v1", capacity=10),
        ticket("t3", "e1"),
    ]
    io = TestingIO(kafka_records(records), batch_size=1)  # TestingIO has no record cache: every change is written
    run(build(io), 1)
    assert io.values("artist-ticket-count") == [ArtistTicketCount("a1", n) for n in (1, 2, 3)]


def test_a_snapshot_of_an_event_venue_from_before_through_event_resumes_with_its_venue():
    state = (None, {"eventid": "e1", "venueid": "v1", "held": EventVenue("e1").held})  # as it was pickled

    class Before:
        def __reduce__(self):
            return object.__new__, (EventVenue,), state

    old = pickle.loads(pickle.dumps(Before(), pickle.HIGHEST_PROTOCOL))
    assert (old.eventid, old.to) == ("e1", "v1")
