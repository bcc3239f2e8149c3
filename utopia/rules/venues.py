"""The must-see venue: which venue has hosted the most events, and which has the most customers (must_see_venue).

Three keyed steps, so that no one step sees every record and the one global step sees little:

1. per event (`EventVenue`): the venue the event was first seen with. A ticket that comes before
   its event waits there, as it was read (for the dead letters, should its event never come). Each
   new fact about a venue (a new event; a customer holding a ticket to one of its events) goes on
   with its place in the input. Most tickets skip this step: every worker also learns each event's
   venue (`KnownVenues`), and a ticket whose event came before it goes straight to its venue.
2. per venue (`VenueCounts`): its distinct events and distinct customers, the input position where
   each count was reached, and its name. A changelog: only changed counts leave, at most once per
   flush interval.
3. per metric (`VenueLeader`, keys `events` and `customers`): the leading venue by the ranking rule,
   from the positions, not from the order counts arrive in (they come from several workers).

See docs/outputs.md#must_see_venue.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from operator import attrgetter
from typing import cast, final

import msgspec

from utopia.models import Event, MustSeeVenue, Ticket, Venue, VenueMetric
from utopia.rules.ranking import TopN
from utopia.rules.tickets import ThroughEvent
from utopia.steps import Item, Out, Placed, Sent

log = logging.getLogger("utopia")

ALL_VENUES = "venues"
"""The key of every venue's totals on their way to the leaders (split by metric before the ranking)."""
METRICS: tuple[VenueMetric, ...] = ("events", "customers")


@final  # so that a `type(item) is` check tells mypy what an item is not (`VenueCounts`)
class NewEvent(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """An event first seen at a venue, at this input position."""

    position: int


@final
class NewHolder(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """A customer holding a ticket to an event at the venue, counted at this input position.

    A ticket that waited for its event counts when it is released: at its event's position.
    The venue decides whether the customer is new there (they may hold tickets to several of its events).
    """

    customerid: str
    position: int


def event_or_customer(record: Event | Ticket) -> Event | str:
    """What reaches an event's step: an event whole (it is rare), of a ticket only its customer."""
    return record if isinstance(record, Event) else record.customerid  # type: ignore[return-value]  # in READS


class TicketAtVenue(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """A ticket whose event's venue was already known where it was read: what it tells its venue, straight."""

    venueid: str
    holder: NewHolder


class KnownVenues:
    """Where each event takes place, and from which input position, as this process has learned it.

    A ticket needs its event only for the venue, and without this it would cross to its event's
    worker and then on to its venue's: two crossings between processes, where most of the cost of
    scaling out is (docs/performance.md). Every worker learns every event (its first record, as
    `EventVenue` keeps it), and a ticket whose event came before it in the input goes straight to
    its venue as a `TicketAtVenue`, at its own position: just what its event's step would have
    sent on. Any other ticket takes the long way, through its event's step, where it may wait.

    What a process knows depends on timing, never the result: a ticket that could go straight but
    finds its event not yet learned goes the long way to the same count. The worker threads of a
    process share one table (a dict, whose single operations are atomic).
    """

    __slots__ = ("places",)

    def __init__(self) -> None:
        self.places: dict[str, tuple[str, int]] = {}  # eventid -> (venueid, position of its first record)

    def learn(self, events: list[Placed]) -> None:
        places = self.places
        for placed in events:
            event = placed.value
            if event.id not in places:
                places[event.id] = (event.venueid, placed.position)

    def straight_to_venue(
        self, tickets: list[Ticket], start: int, indices: Sequence[int]
    ) -> list[Ticket | TicketAtVenue]:
        """Each ticket as it goes straight to its venue, or itself if it must go through its event's step.

        The tickets are at `start + index` in the input, an index for each.
        """
        known = map(self.places.get, map(_EVENTID, tickets))
        return [
            ticket
            if place is None or place[1] >= start + index
            else TicketAtVenue(place[0], NewHolder(ticket.customerid, start + index))  # type: ignore[arg-type]
            for ticket, index, place in zip(tickets, indices, known)
        ]


_EVENTID = attrgetter("eventid")


class EventVenue(ThroughEvent[str]):
    """Per event: the venue it was first seen with, where its tickets (their customers) go on.

    A later record of the event naming another venue does not move it (docs/outputs.md#sold_out:
    data-demo never moves an event, and venue counts only ever grow). At the end of a finite input,
    each ticket whose event never came goes to the dead letters as it was read.
    """

    __slots__ = ("eventid", "to", "held")

    names = "venueid"
    waits = "tickets wait for their event's venue"

    def arrived(self, position: int) -> tuple[NewEvent]:
        return (NewEvent(position),)

    def passed(self, customerid: str, position: int) -> NewHolder:
        return NewHolder(customerid, position)

    def __setstate__(self, state: tuple[None, dict]) -> None:
        """A snapshot from before `ThroughEvent` named the venue `venueid`."""
        slots = dict(state[1])
        if "venueid" in slots:
            slots["to"] = slots.pop("venueid")
        for name, value in slots.items():
            setattr(self, name, value)


def venue_fact(record: Venue | TicketAtVenue) -> str | None | NewHolder:
    """What reaches a venue's counts: the name on its own record, the holder of a ticket that came straight."""
    return record.name if type(record) is Venue else record.holder  # type: ignore[union-attr]  # a TicketAtVenue


class VenueTotals(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One venue's counts, the input positions where each was reached, and its latest name."""

    venueid: str
    events: int
    events_reached: int
    customers: int
    customers_reached: int
    name: str | None


class VenueCounts:
    """Per venue: distinct events, distinct customers (each at the position it first held a ticket here), and name.

    Facts come from the events' steps, several shards of them, and from tickets that came straight,
    so not in input order: a count's "reached" position is the latest position among the facts it
    counts, which is where the count got to its value in input order whatever order the facts
    arrived in. A customer keeps the earliest position seen, so a ticket that arrives late but came
    first still counts first. The name is null until the venue's record comes; a venue with nothing
    counted is in no ranking.
    """

    __slots__ = ("venueid", "events", "events_reached", "customers", "customers_reached", "name")

    def __init__(self, venueid: str):
        self.venueid = venueid
        self.events = 0
        self.events_reached = -1
        self.customers: dict[str, int] = {}  # customer -> position where they first count here
        self.customers_reached = -1
        self.name: str | None = None

    def apply(self, item: NewHolder | NewEvent | str | None) -> bool:
        if type(item) is NewHolder:
            customers, position = self.customers, item.position
            known = customers.get(item.customerid)
            if known is None:
                customers[item.customerid] = position
                if position > self.customers_reached:
                    self.customers_reached = position
                return True
            if position >= known:
                return False
            customers[item.customerid] = position  # an earlier ticket that arrived later
            if known == self.customers_reached:
                self.customers_reached = max(customers.values())
            return True
        if type(item) is NewEvent:
            self.events += 1
            if item.position > self.events_reached:
                self.events_reached = item.position
            return True
        if item == self.name:
            return False
        self.name = item
        return self.events > 0 or bool(self.customers)

    def value(self) -> Item[VenueTotals]:
        return ALL_VENUES, VenueTotals(
            self.venueid, self.events, self.events_reached, len(self.customers), self.customers_reached, self.name
        )


def per_metric(totals: list[Sent[VenueTotals]]) -> list[Item[VenueTotals]]:
    """Every venue's totals to both leaders (each reads its own count)."""
    return [(metric, total) for _, total in totals for metric in METRICS]


class VenueLeader:
    """Per metric (`events` or `customers`): the leading venue, its count and its latest name.

    Ranked by the ranking rule on the positions where counts were reached, so the leader does not
    depend on the order the venues' counts arrive in. The value changes when the leader, its count
    or its name changes; a venue that only ties the leader does not take its place.
    """

    __slots__ = ("metric", "top", "names", "shown")

    def __init__(self, metric: str):
        self.metric = cast(VenueMetric, metric)  # its key: one of METRICS (`per_metric`)
        self.top: TopN[str] = TopN(1)
        self.names: dict[str, str | None] = {}
        self.shown: tuple[str, int, str | None] | None = None

    def apply(self, total: VenueTotals) -> bool:
        venueid = total.venueid
        if self.metric == "events":
            count, reached = total.events, total.events_reached
        else:
            count, reached = total.customers, total.customers_reached
        self.names[venueid] = total.name
        top = self.top
        if count and (count, reached) != (top.count(venueid), (top.reached or {}).get(venueid)):
            top.raise_to(venueid, count, reached)
        if not top.top:
            return False
        leader = top.top[0]
        now = (leader, top.count(leader), self.names[leader])
        if now == self.shown:
            return False
        self.shown = now
        return True

    def value(self) -> Out:
        venueid, count, name = self.shown  # type: ignore[misc]  # not None: `apply` said the value changed
        return self.metric, MustSeeVenue(self.metric, venueid, name, count)
