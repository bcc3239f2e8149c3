"""Tickets by the buyer's zip code, and neighbours told of popular events (suggested_events_location).

A ticket is processed once its event has a capacity and its buyer a home (a RESID address): it
counts for the zip of the buyer's latest home at that moment, sells one place of its event, and if
the event is then at least 90% sold, the buyer's neighbours who hold no ticket to it are told
(docs/outputs.md#suggested_events_location). Three keyings meet, each in its own step:

- per shard of customers (`HomeShard`): homes and tickets, with every event broadcast, so when a
  ticket is processed and in which zip is known exactly, in input order;
- per event (`NeighbourWatch`): the processed tickets of every shard, put back in input order
  (`in_order`) and counted as sold_out counts them (`EventStatus`); each purchase at
  90% or more asks every shard about the buyer's zip, as of its place in the input;
- per shard of customers again (`Neighbours`): the same homes and tickets, kept by position, so
  each question reads who lived in the zip and who held a ticket then. A zip's thousands of
  residents are spread over the 24 shards, so no single step answers for all of them.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Any

import msgspec

from utopia.codec import InRecord, RequiredWhen, as_in_record
from utopia.models import Address, Event, Ticket, ZipcodePopularEventAlert, ZipcodeTickets
from utopia.rules.sales import EventStatus, first_seen_place, nearly_sold_out
from utopia.rules.tickets import capacity_never_came
from utopia.steps import Item, Lookup, Out, Placed, Sequenced
from utopia.steps.holding import HeldUntilKnown, Sourced
from utopia.steps.sharding import SHARD_KEYS

HOME = "RESID"
"""The address type of a customer's home; a VENUE address is nobody's home, whatever its zip."""

A_HOME_NAMES_ITS_CUSTOMER_AND_ZIP = [RequiredWhen("customerid", "type", HOME), RequiredWhen("zip5", "type", HOME)]
"""A home without its customer or its zip places nobody: a dead letter (docs/outputs.md#dead-letters)."""


def home_never_came(customerid: str) -> str:
    """Why a ticket waited until the end of the input for its buyer's home."""
    return f"waited for the RESID address of customer {customerid}, which never arrived"


class LocatedTicket(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """A processed ticket and the zip of its buyer's home when it was processed."""

    ticketid: str
    customerid: str
    eventid: str
    zip5: str


class PopularPurchase(Lookup, frozen=True):
    """A purchase found its event at least 90% sold: who lived in the buyer's zip then, without a ticket?

    At `position` of `lane`, after the tickets processed there before it (`sub`, their own positions).
    """

    sub: int
    eventid: str
    zip5: str
    buyer: str


WaitingTicket = Placed[Sourced[Ticket]]
"""A ticket as `HomeShard` holds it: at its place in the input, after its raw record."""

Processed = Item[Sequenced[LocatedTicket]]
"""A processed ticket for its event's step: keyed by its event, at the place it was processed."""


class HeldAgain(HeldUntilKnown[WaitingTicket]):
    """Tickets held a second time, by a step that repeats `HomeShard`'s work: counted and reported there only."""

    __slots__ = ()

    @staticmethod
    def _count(change: int) -> None:
        pass


class HomeShard:
    """One shard of customers: their homes and tickets, and every event, in input order.

    A ticket waits for its event's capacity, then for its buyer's home; it is processed right after
    the record that completes it, in input order with the others that record releases. Processed,
    it goes on keyed by its event, at the place it was processed, with its own place as `sub`.
    """

    __slots__ = ("events", "home", "for_event", "for_home")

    placed = (Address, Event, Ticket)
    holds = (Ticket,)
    waits = "tickets wait for their event's capacity, then their buyer's home"
    held: type[HeldUntilKnown[WaitingTicket]] = HeldUntilKnown

    def __init__(self, key: str):
        self.events: dict[str, Event] = {}
        self.home: dict[str, str] = {}  # customer -> zip5 of the latest home
        self.for_event: dict[str, HeldUntilKnown[WaitingTicket]] = {}
        self.for_home: dict[str, HeldUntilKnown[WaitingTicket]] = {}

    def apply(self, placed: Placed[Address | Event | Sourced[Ticket]]) -> list[Processed]:
        value = placed.value
        if type(value) is Address:
            if value.type != HOME:
                return []
            customer: str = value.customerid  # type: ignore[assignment]  # a home names both:
            zip5: str = value.zip5  # type: ignore[assignment]  # (A_HOME_NAMES_ITS_CUSTOMER_AND_ZIP)
            self.home[customer] = zip5
            self.moved(customer, zip5, placed.position)
            return self.release(self.for_home.pop(customer, None), placed.position)
        if type(value) is Event:
            self.events[value.id] = value
            if value.capacity is None:
                return []
            return self.release(self.for_event.pop(value.id, None), placed.position)
        return self.ready(placed, placed.position)  # type: ignore[arg-type]  # a ticket, the only other kind

    def release(self, held: HeldUntilKnown[WaitingTicket] | None, now: int) -> list[Processed]:
        if held is None:
            return []
        out: list[Processed] = []
        for placed in sorted(held.release(), key=_position):  # tickets moved from waiting for their event come later
            out.extend(self.ready(placed, now))
        return out

    def ready(self, placed: WaitingTicket, now: int) -> list[Processed]:
        ticket = placed.value[1]
        eventid: str = ticket.eventid  # type: ignore[assignment]  # a ticket names its event and buyer (READS)
        buyer: str = ticket.customerid  # type: ignore[assignment]
        event = self.events.get(eventid)
        if event is None or event.capacity is None:
            self._hold(self.for_event, eventid, placed)
            return []
        zip5 = self.home.get(buyer)
        if zip5 is None:
            self._hold(self.for_home, buyer, placed)
            return []
        return self.processed(LocatedTicket(ticket.id, buyer, eventid, zip5), placed, now)

    def _hold(self, waiting: dict[str, HeldUntilKnown[WaitingTicket]], key: str, placed: WaitingTicket) -> None:
        held = waiting.get(key)
        if held is None:
            held = waiting[key] = self.held()
        held.hold(placed)

    def processed(self, ticket: LocatedTicket, placed: WaitingTicket, now: int) -> list[Processed]:
        return [(ticket.eventid, Sequenced(placed.lane, now, ticket, placed.position))]

    def moved(self, customerid: str, zip5: str, position: int) -> None:
        """A customer's home is now in `zip5` (a first home, a move, or the same again)."""

    def unfinished(self) -> list[tuple[InRecord, str]]:
        letters = [
            (as_in_record(placed.value[0]), capacity_never_came(eventid, self.events.get(eventid)))
            for eventid, held in self.for_event.items()
            for placed in held.release()
        ]
        letters += [
            (as_in_record(placed.value[0]), home_never_came(customerid))
            for customerid, held in self.for_home.items()
            for placed in held.release()
        ]
        self.for_event, self.for_home = {}, {}
        return letters


def _position(placed: WaitingTicket) -> int:
    return placed.position


class NeighbourWatch(EventStatus):
    """Per event: its processed tickets, in input order, sold as sold_out counts them.

    Every purchase that finds the event at least 90% sold (the NEARLY_SOLD_OUT threshold, whether
    or not it was the one that crossed it) asks every shard of customers about the buyer's zip.
    Tickets waited for their event in `HomeShard` already. Only with several Kafka workers can one
    come before its event here: when another worker read the event, its lane is not ordered with
    the ticket's (docs/outputs.md#ordering); it then waits for the event here too.
    """

    __slots__ = ()

    placed = (Event,)
    holds = ()
    held: HeldUntilKnown[Sequenced[LocatedTicket]]  # type: ignore[assignment]  # processed tickets, not raw ones

    # Its events come placed and its tickets processed, where EventStatus takes both bare: a state of its own step.
    def apply(self, item: Placed[Event] | Sequenced[LocatedTicket]) -> Iterator[Item[PopularPurchase]]:  # type: ignore[override]
        if type(item) is Sequenced:  # a processed ticket
            if self.event is None or self.event.capacity is None:
                self.held.hold(item)
            else:
                yield from self.purchased(item)
            return
        event: Event = item.value  # type: ignore[assignment]  # events come placed, tickets processed
        self.event = first_seen_place(self.event, event)
        if event.capacity is not None:
            for waiting in self.held.release():
                yield from self.purchased(waiting)

    def purchased(self, item: Sequenced[LocatedTicket]) -> Iterator[Item[PopularPurchase]]:
        for _ in self.sell():  # sold_out's alerts are not this dataflow's output
            pass
        capacity: int = self.event.capacity  # type: ignore[union-attr, assignment]  # known: `apply` held until then
        if nearly_sold_out(self.sold, capacity):
            ticket = item.value
            question = PopularPurchase(
                item.lane, item.position, item.sub, ticket.eventid, ticket.zip5, ticket.customerid
            )
            yield from ((key, question) for key in SHARD_KEYS)


class Neighbours(HomeShard):
    """`HomeShard` again, kept by position, answering each `PopularPurchase` as of its place in the input.

    - `history`: each customer's number in this shard (in order of their first home) and zips with
      the positions they moved in; `arrivals`: zip -> who moved in there and when, in input order:
      the only customers to look at.
    - `holding`: customer -> event -> (position, sub) of their first processed ticket to it.
    - `told`: event -> one bit per customer of the shard (by number), set once told, so each hears
      at most once per event. A bit, not a set of names: a popular event tells thousands, and a
      set would grow by some 50 bytes with every alert sent.
    Questions about one event come from one key, in input order, so the first purchase that could
    tell a customer is the one that does. Whoever a question about an event and zip did not tell
    never will be (told, holding a ticket, or gone) unless they move in again: a later question
    about the same pair looks only at those who moved in since (`asked`). So the purchases after
    the first at 90% cost next to nothing, however many residents the zip has.
    """

    __slots__ = ("history", "arrivals", "holding", "told", "asked")

    held = HeldAgain

    def __init__(self, key: str):
        super().__init__(key)
        self.history: dict[str, tuple[int, list[int], list[str]]] = {}
        self.arrivals: dict[str, tuple[list[int], list[str]]] = {}
        self.holding: dict[str, dict[str, tuple[int, int]]] = {}
        self.told: dict[str, bytearray] = {}
        self.asked: dict[tuple[str, str], int] = {}  # (event, zip) -> position of the last question

    def moved(self, customerid: str, zip5: str, position: int) -> None:
        _, positions, zips = self.history.setdefault(customerid, (len(self.history), [], []))
        positions.append(position)
        zips.append(zip5)
        when, who = self.arrivals.setdefault(zip5, ([], []))
        when.append(position)
        who.append(customerid)

    def processed(self, ticket: LocatedTicket, placed: WaitingTicket, now: int) -> list[Processed]:
        self.holding.setdefault(ticket.customerid, {}).setdefault(ticket.eventid, (now, placed.position))
        return []

    def read(self, question: PopularPurchase) -> list[Out]:
        eventid, zip5, buyer, position = question.eventid, question.zip5, question.buyer, question.position
        arrivals = self.arrivals.get(zip5)
        if arrivals is None:
            return []
        when, who = arrivals
        since = self.asked.get((eventid, zip5))
        self.asked[eventid, zip5] = position
        first = 0 if since is None else bisect.bisect(when, since)
        last = bisect.bisect(when, position)  # a move at the question's position came before it
        if first == last:
            return []
        told = self.told_of(eventid)
        at = (position, question.sub)
        out: list[Out] = []
        for customer in dict.fromkeys(who[first:last]):
            if customer == buyer:
                continue
            number, positions, zips = self.history[customer]
            byte, bit = told_bit(number)
            if told[byte] & bit:
                continue
            if zips[bisect.bisect(positions, position) - 1] != zip5:
                continue  # moved on before the question
            bought = self.holding.get(customer, {}).get(eventid)
            if bought is not None and bought < at:
                continue
            told[byte] |= bit
            out.append((customer, ZipcodePopularEventAlert(customer, zip5, eventid, buyer)))
        return out

    def told_of(self, eventid: str) -> bytearray:
        """The bits of who was told of this event, one for every customer the shard has now."""
        told = self.told.get(eventid)
        if told is None:
            told = self.told[eventid] = bytearray()
        missing = len(self.history) // 8 + 1 - len(told)
        if missing > 0:
            told.extend(bytes(missing))
        return told

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        """A snapshot of a version that kept the names of those told resumes with them as bits."""
        for name, value in state[1].items():
            setattr(self, name, value)
        history, told = state[1]["history"], state[1]["told"]
        if all(len(lived) == 3 for lived in history.values()):
            return
        self.history = {
            customer: (number, positions, zips) for number, (customer, (positions, zips)) in enumerate(history.items())
        }
        self.told = {}
        for eventid, customers in told.items():
            told = self.told_of(eventid)
            for customer in customers:
                byte, bit = told_bit(self.history[customer][0])
                told[byte] |= bit

    def unfinished(self) -> list[tuple[InRecord, str]]:
        """Nothing: `HomeShard` reports the same tickets."""
        return []


def told_bit(number: int) -> tuple[int, int]:
    """Where a customer's number is in a `Neighbours.told` bitmap: its byte, and its bit in that byte."""
    return number >> 3, 1 << (number & 7)


class ZipTickets:
    """The tickets counted for one zip code (a changelog)."""

    __slots__ = ("zip5", "tickets")

    def __init__(self, zip5: str):
        self.zip5 = zip5
        self.tickets = 0

    def apply(self, ticket: LocatedTicket) -> bool:
        self.tickets += 1
        return True

    def value(self) -> Out:
        return self.zip5, ZipcodeTickets(self.zip5, self.tickets)


def located_zip(ticket: Sequenced) -> str:
    return ticket.value.zip5
