"""An artist's top streamers, told when the artist has a new event (sold_out's bonus alerts)."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from utopia.dates import normalize_eventdate
from utopia.models import Email, Event, EventStreamerAlert, Stream
from utopia.ranking import TopN
from utopia.steps import Out

TOP_STREAMERS = 3


class FanOfNewEvent(msgspec.Struct, frozen=True):
    """One of the artist's top streamers when the event was first seen; the email is added later."""

    customerid: str
    streams: int
    event: Event


def fan_or_event(record: Stream | Event) -> str | Event:
    """What reaches an artist: of a stream only the customer who played it, an event whole."""
    return record.customerid if isinstance(record, Stream) else record


class ArtistFans:
    """Per artist: customers ranked by their streams of the artist, and the events already announced."""

    __slots__ = ("artistid", "fans", "announced")

    def __init__(self, artistid: str):
        self.artistid = artistid
        self.fans: TopN[str] = TopN(TOP_STREAMERS)
        self.announced: set[str] = set()

    def apply(self, record: str | Event) -> tuple[FanOfNewEvent, ...]:
        """A customer id is one stream of the artist by that customer (see `fan_or_event`).

        Returns a tuple, not a generator: this runs for every stream, and a stream tells nobody.
        """
        if isinstance(record, str):
            self.fans.add(record)
            return ()
        if record.id in self.announced:  # an event re-sent with the same id is not new (SPEC 4.9)
            return ()
        self.announced.add(record.id)
        return tuple(FanOfNewEvent(customer, streams, record) for customer, streams in self.fans.ranked())


class CustomerEmail:
    """Per customer: the latest email address seen, put on the customer's alerts (null while none)."""

    __slots__ = ("customerid", "email")

    def __init__(self, customerid: str):
        self.customerid = customerid
        self.email: str | None = None

    def apply(self, record: Email | FanOfNewEvent) -> Iterator[Out]:
        if isinstance(record, Email):
            self.email = record.email if record.email is not None else self.email
        else:
            event = record.event
            yield self.customerid, EventStreamerAlert(
                self.customerid, self.email, event.id, event.artistid, event.venueid,
                normalize_eventdate(event.eventdate), record.streams,
            )
