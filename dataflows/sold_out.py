"""Sold-out events: alert when an event nearly sells out and when it sells out; tell the artist's top fans.

events + tickets -> sales per event (tickets wait for their event) -> event-alerts (alert, key eventid)
events + streams -> top streamers per artist, at each event record -> only at the event's first record
                 -> + their email as of the event -> event-streamer-alerts (alert, key customerid)
"""

from bytewax.dataflow import Dataflow

from utopia.codec import Reads
from utopia.io.kafka_io import kafka_entry_point
from utopia.models import Email, Event, Stream, Ticket
from utopia.rules.fans import ArtistFans, CustomerEmail, FirstSighting, fan_or_event
from utopia.rules.sales import EventStatus, counted
from utopia.steps import FlowIO, join_as_of, keyed_state, read, write
from utopia.steps.keys import BY_ARTIST, BY_CUSTOMER, BY_EVENT, EVENTS_ONLY

READS: Reads = {Event: ["artistid"], Ticket: ["eventid"], Stream: ["customerid", "artistid"], Email: ["customerid"]}


def build(io: FlowIO) -> Dataflow:
    flow = Dataflow("sold_out")
    records = read("events_tickets_streams_emails", flow, io, READS)
    event_alerts = keyed_state(
        "sales_per_event", records, BY_EVENT, EventStatus, value_of_runs={Ticket: counted}, dead_letters=io
    )
    write("event_alerts", event_alerts, io, "event-alerts")
    fans = keyed_state("top_streamers_per_artist", records, BY_ARTIST, ArtistFans, value=fan_or_event)
    new_event_fans = keyed_state("fans_of_first_sighting", records, EVENTS_ONLY, FirstSighting, also=fans)
    streamer_alerts = join_as_of("email_top_streamers", records, BY_CUSTOMER, CustomerEmail, new_event_fans, (Event,))
    write("event_streamer_alerts", streamer_alerts, io, "event-streamer-alerts")
    return flow


flow = kafka_entry_point(build)
