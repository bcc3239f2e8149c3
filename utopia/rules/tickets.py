"""The ticket desk of one event: confirm while there is capacity, reject after (purchase_event_ticket)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, ClassVar, Generic, TypeVar

import msgspec

from utopia.codec import InRecord, as_in_record
from utopia.models import Event, Ticket, TicketResponse, TicketStatus
from utopia.steps import Item, Out, Placed
from utopia.steps.holding import HeldUntilKnown, Sourced

T = TypeVar("T")
log = logging.getLogger("utopia")


def capacity_never_came(eventid: str, event: Event | None) -> str:
    """Why a ticket of this event waited until the end of the input."""
    if event is None:
        return f"waited for event {eventid}, which never arrived"
    return f"waited for the capacity of event {eventid}, which never arrived (the event's capacity is null)"


class WaitsForEvent(Generic[T]):
    """The state of one event whose tickets may come before it: they wait in `held`, in input order.

    Topics are not ordered relative to each other, so a ticket may come before its event (or while
    its capacity is null). Every rule that takes tickets at their event (sold_out, purchase_event_ticket,
    global_totals, must_see_venue) holds such a ticket here and releases it right after the record
    that completes it; at the end of a finite input, each one still waiting goes to the dead letters
    as it was read, saying what never came. A subclass keeps `eventid` and `held` in its slots, and
    `event` too if it keeps the event (else the event counts as never come while tickets wait).
    """

    __slots__ = ()

    holds: ClassVar[tuple[type, ...]] = (Ticket,)
    """Tickets come as `Sourced` pairs, `(raw, value)`: one may wait for its event forever."""
    eventid: str
    held: HeldUntilKnown[Sourced[T]]
    event: Event | None = None

    def __init__(self, eventid: str):
        # The slots are the subclasses' own, as they were before this class: what a state pickles is unchanged.
        self.eventid = eventid  # type: ignore[misc]
        self.held = HeldUntilKnown()  # type: ignore[misc]

    def unfinished(self) -> list[tuple[InRecord, str]]:
        reason = capacity_never_came(self.eventid, self.event)
        return [(as_in_record(raw), reason) for raw, _ in self.held.release()]


class ThroughEvent(WaitsForEvent[T]):
    """Per event: its tickets reach what the event names (its venue, its artist), as the event was first seen.

    "Count X through Y": a ticket names its event and the event names its venue, so a count per venue needs each
    ticket sent on, keyed by its event's `names` field. Here, in a `keyed_state` keyed by event, a ticket waits
    for its event; then it goes on as `passed(value, position)`, keyed by the field's value, to a step of that key
    (`items_per_key`, or `also=` of one that keeps records of its own). The event's first record also sends what
    `arrived(position)` says. Held tickets go on right after that record, at its position: a held record counts
    when it is released (docs/outputs.md#ranking). A later record of the event naming another value does not move
    it (data-demo never moves an event, and counts that only grow cannot take tickets back): it is logged and
    ignored. The field is one the dataflow's READS requires of an event. A subclass keeps `eventid`, `to` (the
    value, None until the event comes) and `held` in its slots.
    """

    __slots__ = ()

    placed = (Event, Ticket)
    """Both come with their place in the input: where the count they reach grew."""
    names: ClassVar[str]
    """The event's field the tickets reach: `venueid`, `artistid`."""
    to: str | None

    def __init__(self, eventid: str):
        super().__init__(eventid)
        self.to = None  # type: ignore[misc]

    def apply(self, placed: Placed) -> tuple[Item[Any], ...]:
        record = placed.value
        if type(record) is tuple:  # a ticket, as read and as the step's value of it
            if self.to is None:
                self.held.hold(record)
                return ()
            return ((self.to, self.passed(record[1], placed.position)),)
        to = getattr(record, self.names)
        if self.to is not None:
            if to != self.to:
                what = self.names.removesuffix("id")
                log.warning("event %s was re-sent with %s %s; it keeps %s %s", self.eventid, what, to, what, self.to)
            return ()
        self.to, position = to, placed.position  # type: ignore[misc]
        first = tuple((to, item) for item in self.arrived(position))
        return (*first, *((to, self.passed(value, position)) for _, value in self.held.release()))

    def arrived(self, position: int) -> tuple[Any, ...]:
        """What the event's first record sends on, at `position` (nothing unless a subclass says)."""
        return ()

    def passed(self, value: T, position: int) -> Any:
        """What a ticket (the step's `value` of it) sends on, counted at `position`."""
        raise NotImplementedError


class DeskTicket(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """What a ticket desk needs of a ticket: its id and its customer, which the response echoes.

    Only this goes to the event's worker, with the ticket's Kafka message in case it waits: with
    several processes about half the tickets cross to another one, and a whole `Ticket`, encoded
    field name by field name, costs more to send (docs/performance.md#what-keeps-crossing-cheap).
    """

    id: str
    customerid: str | None


def desk_tickets(tickets: list[Ticket]) -> list[DeskTicket]:
    """What reaches an event's desk of each ticket of a run (an event goes whole: it is rare).

    One call per run, not per ticket; a comprehension, whose attribute reads the interpreter
    specializes, where `operator.attrgetter` looks the field up in the type each time.
    """
    return [DeskTicket(ticket.id, ticket.customerid) for ticket in tickets]


class TicketDesk(WaitsForEvent[DeskTicket]):
    """Per event: the first `capacity` tickets are confirmed, later ones rejected.

    The latest capacity counts, so raising it after a sell-out confirms new tickets again. A ticket
    that comes before its event (or while the event's capacity is still null) is held and decided
    right after the event record that brings the capacity (docs/outputs.md#purchase_event_ticket).
    """

    __slots__ = ("eventid", "event", "confirmed", "held")

    waits = "tickets wait for their event's capacity"
    """Tickets reach the desk as `Sourced` desk tickets (`desk_tickets`)."""

    def __init__(self, eventid: str):
        super().__init__(eventid)
        self.event: Event | None = None
        self.confirmed = 0

    def apply(self, record: Event | Sourced[DeskTicket]) -> Iterator[Out]:
        if isinstance(record, Event):
            self.event = record
            if record.capacity is not None:
                for _, ticket in self.held.release():
                    yield self.decide(ticket, record.capacity)
        elif self.event is None or self.event.capacity is None:
            self.held.hold(record)
        else:
            yield self.decide(record[1], self.event.capacity)

    def decide(self, ticket: DeskTicket, capacity: int) -> Out:
        """Confirms or rejects a ticket against its event's latest capacity."""
        status: TicketStatus
        if self.confirmed < capacity:
            self.confirmed += 1
            status, remaining = "CONFIRMED", capacity - self.confirmed
        else:
            status, remaining = "REJECTED", 0
        return ticket.id, TicketResponse(ticket.id, self.eventid, ticket.customerid, status, remaining)
