"""Where records meet in the keyed steps: per record type, the field holding the key.

A record of a type not named skips the step.
"""

from __future__ import annotations

from utopia.models import Artist, Email, Event, Stream, Ticket, Venue
from utopia.rules.popularity import everyone
from utopia.rules.venues import TicketAtVenue
from utopia.steps import KeyFields

BY_EVENT: KeyFields = {Event: "id", Ticket: "eventid"}
"""Events and their tickets meet at the event."""

EVENTS_ONLY: KeyFields = {Event: "id"}
"""An event's own records, without its tickets."""

BY_ARTIST: KeyFields = {Stream: "artistid", Event: "artistid"}
"""Streams and events meet at their artist."""

STREAMS_AND_NAME_BY_ARTIST: KeyFields = {Stream: "artistid", Artist: "id"}
"""An artist's streams meet its own record, which names it."""

ARTIST_NAMES_FOR_ALL: KeyFields = {Artist: everyone}
"""Every artist's record, at the one key of a ranking over everything."""

BY_LISTENER: KeyFields = {Stream: "customerid"}
"""A stream belongs to the customer who played it."""

BY_CUSTOMER: KeyFields = {Email: "customerid"}
"""A customer's email addresses, which the alerts to send them look up."""

VENUES: KeyFields = {Venue: "id", TicketAtVenue: "venueid"}
"""A venue's own record, which names it, and the tickets that go straight to it."""
