"""The ticket desk of one event: confirm while there is capacity, reject after (purchase_event_ticket)."""

from __future__ import annotations

from collections.abc import Iterator

from utopia.holding import HeldUntilKnown
from utopia.models import Event, Ticket, TicketResponse
from utopia.steps import Out


class TicketDesk:
    """Per event: the first `capacity` tickets are confirmed, later ones rejected (SPEC 2, 4.8).

    The latest capacity counts, so raising it after a sell-out confirms new tickets again. A ticket
    that comes before its event (or while the event's capacity is still null) is held and decided
    right after the event record that brings the capacity.
    """

    __slots__ = ("eventid", "capacity", "confirmed", "held")

    def __init__(self, eventid: str):
        self.eventid = eventid
        self.capacity: int | None = None
        self.confirmed = 0
        self.held: HeldUntilKnown[Ticket] = HeldUntilKnown()

    def apply(self, record: Event | Ticket) -> Iterator[Out]:
        if isinstance(record, Event):
            self.capacity = record.capacity
            if self.capacity is not None:
                for ticket in self.held.release():
                    yield self.decide(ticket)
        elif self.capacity is None:
            self.held.hold(record)
        else:
            yield self.decide(record)

    def decide(self, ticket: Ticket) -> Out:
        assert self.capacity is not None
        if self.confirmed < self.capacity:
            self.confirmed += 1
            status, remaining = "CONFIRMED", self.capacity - self.confirmed
        else:
            status, remaining = "REJECTED", 0
        return ticket.id, TicketResponse(ticket.id, self.eventid, ticket.customerid, status, remaining)
