"""An artist's top streamers, told when the artist has a new event (sold_out's bonus alerts)."""

from __future__ import annotations

import bisect

import msgspec

from utopia.models import Email, Event, EventStreamerAlert
from utopia.rules.ranking import TopN
from utopia.steps import Lookup, Out, Placed

TOP_STREAMERS = 3


class EventFans(msgspec.Struct, frozen=True, gc=False):
    """The artist's top streamers at the place in the input where a record of the event came.

    Only the event's first record tells anyone: the event's own step checks that (`FirstSighting`).
    """

    lane: int
    position: int
    event: Event
    fans: tuple[tuple[str, int], ...]


class FanOfNewEvent(Lookup, frozen=True):
    """One of the artist's top streamers when the event was first seen, at the event's place in the input.

    The email is added by the customer's own step, as it was at that place (docs/outputs.md#ordering).
    """

    customerid: str
    streams: int
    event: Event


def fan_or_event(record) -> str | Event:
    """What reaches an artist: of a stream only the customer who played it, an event whole."""
    return record if isinstance(record, Event) else record.customerid


class ArtistFans:
    """Per artist: customers ranked by their streams of the artist."""

    __slots__ = ("artistid", "fans")

    placed = (Event,)
    """An event comes with its place in the input, which its fans' alerts keep."""

    def __init__(self, artistid: str):
        self.artistid = artistid
        self.fans: TopN[str] = TopN(TOP_STREAMERS)

    def apply(self, record: str | Placed) -> tuple[tuple[str, EventFans], ...]:
        """A customer id is one stream of the artist by that customer (see `fan_or_event`).

        Returns a tuple, not a generator: this runs for every stream, and a stream tells nobody.
        """
        if isinstance(record, str):
            self.fans.add(record)
            return ()
        event = record.value
        return ((event.id, EventFans(record.lane, record.position, event, tuple(self.fans.ranked()))),)


class FirstSighting:
    """Per event: where in the input its first record came, so only that record's fans are told.

    An event re-sent is not new (docs/outputs.md#thresholds), and one re-sent with another artist
    keeps its first artist (docs/outputs.md#sold_out): the other artist's fans hear nothing of it.
    The fans of a record may come before the record itself (they come by way of the artist); they
    wait for it. The records of one event come in input order, so the first to come is the first.
    """

    __slots__ = ("eventid", "first", "waiting")

    placed = (Event,)

    def __init__(self, eventid: str):
        self.eventid = eventid
        self.first: int | None = None
        self.waiting: list[EventFans] = []

    def apply(self, item: Placed | EventFans) -> tuple[tuple[str, FanOfNewEvent], ...]:
        if isinstance(item, EventFans):
            if self.first is None:
                self.waiting.append(item)
                return ()
            return self.tell(item)
        if self.first is not None:
            return ()
        self.first = item.position
        waiting, self.waiting = self.waiting, []
        return tuple(told for fans in waiting for told in self.tell(fans))

    def tell(self, fans: EventFans) -> tuple[tuple[str, FanOfNewEvent], ...]:
        if fans.position != self.first:
            return ()
        return tuple(
            (customer, FanOfNewEvent(fans.lane, fans.position, customer, streams, fans.event))
            for customer, streams in fans.fans
        )


class CustomerEmail:
    """Per customer: the email addresses seen, with their places in the input, put on the customer's alerts.

    An alert carries the latest address as of the event that caused it (null while none), even
    when a later address reached this step first: the addresses are few, so all are kept.
    """

    __slots__ = ("customerid", "positions", "emails")

    placed = (Email,)

    def __init__(self, customerid: str):
        self.customerid = customerid
        self.positions: list[int] = []
        self.emails: list[str] = []

    def apply(self, placed: Placed) -> tuple:
        email = placed.value.email
        if email is not None:
            at = bisect.bisect(self.positions, placed.position)
            self.positions.insert(at, placed.position)
            self.emails.insert(at, email)
        return ()

    def read(self, fan: FanOfNewEvent) -> tuple[Out]:
        known = bisect.bisect(self.positions, fan.position)
        email = self.emails[known - 1] if known else None
        event = fan.event  # with an artist: the dataflow reads no other event (its READS)
        return (
            (
                self.customerid,
                EventStreamerAlert(
                    self.customerid,
                    email,
                    event.id,
                    event.artistid,  # type: ignore[arg-type]
                    event.venueid,
                    event.eventdate,
                    fan.streams,
                ),
            ),
        )
