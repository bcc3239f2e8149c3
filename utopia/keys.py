"""Which key a record belongs to in a keyed step; None means the step does not take that record."""

from __future__ import annotations

from utopia.models import Email, Event, Stream, Ticket


def event_of(record: object) -> str | None:
    """Events and their tickets meet at the event."""
    if isinstance(record, Event):
        return record.id
    if isinstance(record, Ticket):
        return record.eventid
    return None


def artist_of(record: object) -> str | None:
    """Streams and events meet at their artist."""
    if isinstance(record, (Stream, Event)):
        return record.artistid
    return None


def customer_of(record: object) -> str | None:
    """Anything about one customer that is not a stream or ticket: emails, addresses, alerts to send."""
    if isinstance(record, (Stream, Ticket)):
        return None
    return getattr(record, "customerid", None)
