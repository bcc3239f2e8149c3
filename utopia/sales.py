"""How an event sells: tickets against the latest capacity, and the two alerts (sold_out)."""

from __future__ import annotations

from collections.abc import Iterator

from utopia.holding import HeldUntilKnown
from utopia.models import Event, EventAlert, EventAlertKind, Ticket
from utopia.steps import Out


def nearly_sold_out(sold: int, capacity: int) -> bool:
    """At least 90% sold, in exact integer arithmetic (SPEC 4.9)."""
    return 10 * sold >= 9 * capacity


class EventStatus:
    """One event's sales: every ticket counts, and each threshold alerts once, when a ticket first reaches it.

    A ticket that comes before its event (or while its capacity is null) is held and counted right
    after the event record that brings the capacity. A capacity change alone raises no alert, and
    an alert once raised is never repeated, even if a raised capacity makes it untrue for a while.
    """

    __slots__ = ("eventid", "event", "sold", "alerted", "held")

    def __init__(self, eventid: str):
        self.eventid = eventid
        self.event: Event | None = None
        self.sold = 0
        self.alerted: set[EventAlertKind] = set()
        self.held: HeldUntilKnown[Ticket] = HeldUntilKnown()

    def apply(self, record: Event | Ticket) -> Iterator[Out]:
        if isinstance(record, Event):
            self.event = record
            if record.capacity is not None:
                for ticket in self.held.release():
                    yield from self.sell(ticket)
        elif self.event is None or self.event.capacity is None:
            self.held.hold(record)
        else:
            yield from self.sell(record)

    def sell(self, ticket: Ticket) -> Iterator[Out]:
        self.sold += 1
        capacity = self.event.capacity
        if "NEARLY_SOLD_OUT" not in self.alerted and nearly_sold_out(self.sold, capacity):
            yield self.alert("NEARLY_SOLD_OUT")
        if "SOLD_OUT" not in self.alerted and self.sold >= capacity:
            yield self.alert("SOLD_OUT")

    def alert(self, kind: EventAlertKind) -> Out:
        self.alerted.add(kind)
        event, capacity = self.event, self.event.capacity
        remaining = max(capacity - self.sold, 0)
        return self.eventid, EventAlert(self.eventid, event.artistid, event.venueid, capacity, self.sold, remaining, kind)
