"""A few numbers about everything, counted where the records are and added up in one place (global_totals).

The records are spread over partitions, workers and processes, and one total needs one place: the
key `totals`. Only partial counts go there, never records: each worker counts the streams of the
batches it reads; customers and events are counted at their own keys, where a re-sent record is
recognised; tickets are counted at their event, where they wait for it (docs/outputs.md#global_totals).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import msgspec

from utopia.codec import Batch
from utopia.dates import format_instant
from utopia.models import Customer, Event, GlobalTotals, Stream
from utopia.rules.tickets import WaitsForEvent
from utopia.steps import Item, KeyFields, Out, Sent
from utopia.steps.holding import Sourced

TOTALS = "totals"
"""The one key of the totals, and where every partial count is sent."""

CUSTOMER_IDS: KeyFields = {Customer: "id"}
"""A customer's records meet at its id, so that a re-sent customer is recognised."""

STREAMS = frozenset({Stream})
"""The record types a batch's own count is made of."""


def system_now() -> datetime:
    """The system clock in UTC, the totals' unless a test gives another (a function: snapshots pickle the clock)."""
    return datetime.now(UTC)


class Clock(NamedTuple):
    """The wall clock that says which events have taken place; tests pass their own `now` to move it.

    The totals look at it every `every` (real time, as Bytewax wakes a step by the system clock), so
    an event that takes place shows within about that long, with no record needed to notice it.
    """

    now: Callable[[], datetime] = system_now
    every: timedelta = timedelta(seconds=1)


class Counted(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """Records counted somewhere since it last reported: a partial count change, added to the totals."""

    customers: int = 0
    streams: int = 0


class EventPart(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One known event's part of the totals: its latest date (None: unknown) and the tickets counted for it.

    It replaces the event's earlier part, so the totals follow an event whose date moves.
    """

    eventid: str
    date: datetime | None
    tickets: int


NEW_CUSTOMER = Counted(customers=1)


def streams_read(batch: Batch) -> list[Item[Counted]]:
    """What a batch adds to the totals by itself: its streams, counted by the worker that read it.

    A stream is a fact with nothing to wait for or recognise, so it needs no key and never travels.
    A batch without streams still reports (zero), so that the totals exist once any record came.
    """
    streams = sum(len(records) for _, records, _ in batch.runs(STREAMS))
    return [(TOTALS, Counted(streams=streams))]


def added_up(counted: list[Sent[Counted]]) -> list[Item[Counted]]:
    """A shard's partial counts of one flush as one: what travels to the totals is one count per shard."""
    return [(TOTALS, Counted(sum(c.customers for _, c in counted), sum(c.streams for _, c in counted)))]


def just_seen(customer: Customer) -> None:
    """What a customer record brings to its key: nothing but the fact that it came (its id is the key)."""
    return None


class CustomerSeen:
    """One customer id in the distinct count: it counts once, however often its record is re-sent.

    Its value changes once, when its first record comes, so it reports `NEW_CUSTOMER` once.
    """

    __slots__ = ("seen",)

    def __init__(self, customerid: str):
        self.seen = False

    def apply(self, _: None) -> bool:
        first, self.seen = not self.seen, True
        return first

    def value(self) -> Item[Counted]:
        return TOTALS, NEW_CUSTOMER


class EventTotals(WaitsForEvent[None]):
    """One event's part of the totals: whether it is known, its latest date, and its tickets.

    A ticket counts once its event is known (any record of it, with or without a date or capacity):
    one that comes first is held and counted right after the event's first record. An event record
    re-sent with the same date changes nothing.
    """

    __slots__ = ("eventid", "known", "date", "tickets", "held")

    waits = "tickets wait for their event"
    """Tickets arrive as `Sourced` pairs, `(raw, None)` (`utopia.rules.sales.counted`); they wait only while
    the event is unknown, so one still waiting at the end is one whose event never came."""

    def __init__(self, eventid: str):
        super().__init__(eventid)
        self.known = False
        self.date: datetime | None = None
        self.tickets = 0

    def apply(self, record: Event | Sourced[None]) -> bool:
        if isinstance(record, Event):
            # The decoder wrote the date as ISO-8601 UTC, or None when it is in no accepted form.
            date = None if record.eventdate is None else datetime.fromisoformat(record.eventdate)
            changed = not self.known or date != self.date
            self.known, self.date = True, date
            self.tickets += len(self.held.release())  # only a new event has tickets waiting for it
            return changed
        if not self.known:
            self.held.hold(record)
            return False
        self.tickets += 1
        return True

    def value(self) -> Item[EventPart]:
        return TOTALS, EventPart(self.eventid, self.date, self.tickets)


class Totals:
    """The totals (key `totals`): the partial counts added up, and the known events' dates against the clock.

    `events_occurred` is not counted but looked up: the events whose latest date is before the
    clock's now, in a sorted list of dates. It is computed whenever the value is built, and
    `recheck` tells the step when time alone has changed it.
    """

    __slots__ = ("clock", "customers", "streams", "tickets", "events", "dates", "occurred")

    def __init__(self, key: str, clock: Clock):
        self.clock = clock
        self.customers = self.streams = self.tickets = 0
        self.events: dict[str, EventPart] = {}
        self.dates: list[datetime] = []  # the known dates of the known events, sorted
        self.occurred = 0  # events_occurred when last computed

    def apply(self, part: Counted | EventPart) -> bool:
        if isinstance(part, Counted):
            self.customers += part.customers
            self.streams += part.streams
            return part.customers > 0 or part.streams > 0
        before = self.events.get(part.eventid)
        if before == part:
            return False
        if before is not None:
            self.tickets -= before.tickets
            if before.date is not None:
                del self.dates[bisect_left(self.dates, before.date)]
        self.events[part.eventid] = part
        self.tickets += part.tickets
        if part.date is not None:
            insort(self.dates, part.date)
        return True

    def recheck(self) -> bool:
        """Whether time alone changed `events_occurred` since it was last computed."""
        occurred = bisect_left(self.dates, self.clock.now())
        changed, self.occurred = occurred != self.occurred, occurred
        return changed

    def value(self) -> Out:
        now = self.clock.now()
        self.occurred = bisect_left(self.dates, now)  # the dates strictly before now
        return TOTALS, GlobalTotals(
            self.customers, self.streams, len(self.events), self.tickets, self.occurred, format_instant(now)
        )
