"""The records on Utopia's topics, as msgspec Structs.

Input records decode the exact JSON the Java data-demo producer writes: lower-case field names,
every field nullable except `id`, unknown fields ignored. Strict types (docs/outputs.md#dead-letters):
an `int` field rejects `5.0`, a `str` field rejects `5`, so a wrong type is caught at decode time and
dead-lettered. Output records are what the dataflows write, fields in the order docs/outputs.md lists.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class Record(msgspec.Struct, frozen=True, gc=False):
    """Base of the input records: every one is keyed by its string `id`.

    `gc=False` (here and on the outputs): a record holds only strings and numbers, so it can never
    be part of a reference cycle, and the cycle collector need not track the millions a run makes.
    """

    id: str


class Customer(Record, frozen=True):
    type: str | None = None
    gender: str | None = None
    fname: str | None = None
    mname: str | None = None
    lname: str | None = None
    fullname: str | None = None
    suffix: str | None = None
    title: str | None = None
    birthdt: str | None = None
    joindt: str | None = None


class Address(Record, frozen=True):
    customerid: str | None = None
    formatcode: str | None = None
    type: str | None = None
    line1: str | None = None
    line2: str | None = None
    citynm: str | None = None
    state: str | None = None
    zip5: str | None = None
    zip4: str | None = None
    countrycd: str | None = None
    latitude: float | None = None
    longitude: float | None = None


class Email(Record, frozen=True):
    customerid: str | None = None
    email: str | None = None


class Phone(Record, frozen=True):
    customerid: str | None = None
    phonetypecd: str | None = None
    primaryind: str | None = None
    timezone: str | None = None
    extnbr: str | None = None
    number: str | None = None


class Artist(Record, frozen=True):
    name: str | None = None
    genre: str | None = None


class Venue(Record, frozen=True):
    addressid: str | None = None
    name: str | None = None
    maxcapacity: int | None = None


class Event(Record, frozen=True):
    artistid: str | None = None
    venueid: str | None = None
    capacity: int | None = None
    eventdate: str | None = None
    """As decoded: ISO-8601 UTC, or null when unknown (the decoder reads every accepted form)."""


class Ticket(Record, frozen=True):
    customerid: str | None = None
    eventid: str | None = None
    price: float | None = None


class Stream(Record, frozen=True):
    customerid: str | None = None
    artistid: str | None = None
    streamtime: str | None = None


INPUT_RECORDS: dict[str, type[Record]] = {
    "customers": Customer,
    "addresses": Address,
    "emails": Email,
    "phones": Phone,
    "artists": Artist,
    "venues": Venue,
    "events": Event,
    "tickets": Ticket,
    "streams": Stream,
}
"""Input topic name (without the input prefix) -> the record it carries."""

TOPIC_OF: dict[type[Record], str] = {model: name for name, model in INPUT_RECORDS.items()}
"""Record type -> its input topic name."""


# --- outputs -----------------------------------------------------------------------------------


class Output(msgspec.Struct, frozen=True, gc=False):
    """Base of the output values."""


class CustomerStreamCount(Output, frozen=True):
    customerid: str
    streams: int


class ArtistStreams(msgspec.Struct, frozen=True, gc=False):
    artistid: str
    streams: int


class TopCustomerArtists(Output, frozen=True):
    customerid: str
    top: list[ArtistStreams]


TicketStatus = Literal["CONFIRMED", "REJECTED"]


class TicketResponse(Output, frozen=True):
    ticketid: str
    eventid: str
    customerid: str | None
    status: TicketStatus
    remaining: int


class NamedArtistStreams(msgspec.Struct, frozen=True, gc=False):
    artistid: str
    name: str | None
    streams: int


class TopArtists(Output, frozen=True):
    top: list[NamedArtistStreams]


class CustomersByTopArtist(Output, frozen=True):
    artistid: str
    customers: list[str]


class TrendingArtists(Output, frozen=True):
    window_start: str
    window_end: str
    top: list[NamedArtistStreams]


EventAlertKind = Literal["NEARLY_SOLD_OUT", "SOLD_OUT"]


class EventAlert(Output, frozen=True):
    eventid: str
    artistid: str | None
    venueid: str | None
    capacity: int
    sold: int
    remaining: int
    alert: EventAlertKind


class EventStreamerAlert(Output, frozen=True):
    customerid: str
    email: str | None
    eventid: str
    artistid: str
    venueid: str | None
    eventdate: str | None
    streams: int


VenueMetric = Literal["events", "customers"]


class MustSeeVenue(Output, frozen=True):
    metric: VenueMetric
    venueid: str
    name: str | None
    count: int


class GenreEventSuggestion(Output, frozen=True):
    customerid: str
    eventid: str
    artistid: str
    genre: str
    reason: Literal["NEW_EVENT", "POPULAR_EVENT"]


class GlobalTotals(Output, frozen=True):
    customers: int
    streams: int
    events: int
    tickets: int
    events_occurred: int
    as_of: str


class ZipcodeTickets(Output, frozen=True):
    zip5: str
    tickets: int


class ZipcodePopularEventAlert(Output, frozen=True):
    customerid: str
    zip5: str
    eventid: str
    buyer_customerid: str


class DeadLetter(Output, frozen=True, omit_defaults=True):
    """A bad input record, or an output too large to send (docs/outputs.md#dead-letters).

    The optional fields appear only when they say something: `encoding` and `key_encoding` for
    base64, the `*_bytes` and `*_sha256` pairs when a value or key was cut to fit in a message.
    """

    dataflow: str
    topic: str
    partition: int
    offset: int
    key: str | None
    value: str | None
    error: str
    encoding: Literal["base64"] | None = None
    key_encoding: Literal["base64"] | None = None
    value_bytes: int | None = None
    value_sha256: str | None = None
    key_bytes: int | None = None
    key_sha256: str | None = None


CHANGELOGS = frozenset(
    {
        "customer-stream-count",
        "top-customer-artists",
        "top-artists",
        "customers-by-top-artist",
        "must-see-venue",
        "global-totals",
        "zipcode-tickets",
    }
)
"""Outputs whose meaning is the latest value per key (docs/outputs.md#outputs); the others are alerts and windows."""

OUTPUT_RECORDS: dict[str, type[Output]] = {
    "customer-stream-count": CustomerStreamCount,
    "top-customer-artists": TopCustomerArtists,
    "ticket-response": TicketResponse,
    "top-artists": TopArtists,
    "customers-by-top-artist": CustomersByTopArtist,
    "trending-artists": TrendingArtists,
    "event-alerts": EventAlert,
    "event-streamer-alerts": EventStreamerAlert,
    "must-see-venue": MustSeeVenue,
    "genre-event-suggestions": GenreEventSuggestion,
    "global-totals": GlobalTotals,
    "zipcode-tickets": ZipcodeTickets,
    "zipcode-popular-event-alerts": ZipcodePopularEventAlert,
    "dead-letters": DeadLetter,
}
"""Output name (without prefix and suffix) -> the value it carries."""
