"""How an event sells: tickets against the latest capacity, and the two alerts (sold_out)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import msgspec

from utopia.models import Event, EventAlert, EventAlertKind, Ticket
from utopia.rules.tickets import WaitsForEvent
from utopia.steps import Item
from utopia.steps.holding import Sourced

log = logging.getLogger("utopia")


def counted(tickets: list[Ticket]) -> list[None]:
    """What a count of tickets needs of each ticket: only that it came (`keyed_state`'s `value_of_runs`).

    A ticket that waits keeps its Kafka message, for its dead letter; nothing else of it reaches its
    event's step, and with several processes nothing else of it crosses to another one
    (docs/performance.md#what-keeps-crossing-cheap).
    """
    return [None] * len(tickets)


def nearly_sold_out(sold: int, capacity: int) -> bool:
    """At least 90% sold, in exact integer arithmetic (docs/outputs.md#thresholds)."""
    return 10 * sold >= 9 * capacity


def first_seen_place(known: Event | None, update: Event) -> Event:
    """The event as updated by a later record: new capacity and date, but the artist and venue it was first seen with.

    data-demo never moves an event, so counts by venue or artist only ever grow
    (docs/outputs.md#sold_out); a record that would move one is logged and not followed.
    """
    if known is None or (update.artistid, update.venueid) == (known.artistid, known.venueid):
        return update
    log.warning(
        "event %s was re-sent with artist %s, venue %s; it keeps artist %s, venue %s",
        update.id,
        update.artistid,
        update.venueid,
        known.artistid,
        known.venueid,
    )
    return msgspec.structs.replace(update, artistid=known.artistid, venueid=known.venueid)


class EventStatus(WaitsForEvent[None]):
    """One event's sales: every ticket counts, and each threshold alerts once, when a ticket first reaches it.

    A ticket that comes before its event (or while its capacity is null) is held and counted right
    after the event record that brings the capacity. A capacity change alone raises no alert, and
    an alert once raised is never repeated, even if a raised capacity makes it untrue for a while.
    """

    __slots__ = ("eventid", "event", "sold", "alerted", "held")

    waits = "tickets wait for their event's capacity"
    """Tickets arrive as `Sourced` pairs, `(raw, None)` (`counted`)."""

    def __init__(self, eventid: str):
        super().__init__(eventid)
        self.event: Event | None = None
        self.sold = 0
        self.alerted: set[EventAlertKind] = set()

    def apply(self, record: Event | Sourced[None]) -> Iterator[Item[Any]]:
        """The alerts of the tickets sold (`sell`: a subclass may make something else of them)."""
        if isinstance(record, Event):
            self.event = first_seen_place(self.event, record)
            if record.capacity is not None:
                for _ in self.held.release():
                    yield from self.sell()
        elif self.event is None or self.event.capacity is None:
            self.held.hold(record)
        else:
            yield from self.sell()

    # `sell` and `alert` run only once the event and its capacity are known (`apply` holds tickets until then),
    # which mypy cannot follow: the ignores below, rather than a check per ticket.

    def sell(self) -> Iterator[Item[Any]]:
        """One more ticket sold: the alerts it raises."""
        self.sold += 1
        capacity: int = self.event.capacity  # type: ignore[union-attr, assignment]
        if "NEARLY_SOLD_OUT" not in self.alerted and nearly_sold_out(self.sold, capacity):
            yield self.alert("NEARLY_SOLD_OUT")
        if "SOLD_OUT" not in self.alerted and self.sold >= capacity:
            yield self.alert("SOLD_OUT")

    def alert(self, kind: EventAlertKind) -> Item[EventAlert]:
        self.alerted.add(kind)
        event: Event = self.event  # type: ignore[assignment]
        capacity: int = event.capacity  # type: ignore[assignment]
        remaining = max(capacity - self.sold, 0)
        alert = EventAlert(self.eventid, event.artistid, event.venueid, capacity, self.sold, remaining, kind)
        return self.eventid, alert
