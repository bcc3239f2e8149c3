"""Suggested events by location: tickets per zip code, and neighbours told of popular events.

addresses + tickets + events -> per shard of customers (events to every shard): a ticket waits for
        its event's capacity and its buyer's home (RESID address), then is processed in the zip
        of the buyer's latest home -> tickets per zip -> zipcode-tickets (changelog, key zip5)
processed tickets, in input order, + events -> sales per event, as sold_out counts them
        -> each purchase at 90% or more asks every shard about the buyer's zip, as of that purchase
        -> the zip's other residents then, without a ticket to it, once per event
-> zipcode-popular-event-alerts (alert, key customerid)
"""

from bytewax.dataflow import Dataflow

from utopia.codec import Reads
from utopia.io.kafka_io import kafka_entry_point
from utopia.models import Address, Event, Ticket
from utopia.rules.neighbours import (
    A_HOME_NAMES_ITS_CUSTOMER_AND_ZIP,
    HomeShard,
    Neighbours,
    NeighbourWatch,
    ZipTickets,
    located_zip,
)
from utopia.steps import FlowIO, in_order, items_per_key, per_shard, per_shard_join_as_of, read, rekey, write
from utopia.steps.keys import EVENTS_ONLY

READS: Reads = {Address: A_HOME_NAMES_ITS_CUSTOMER_AND_ZIP, Event: [], Ticket: ["customerid", "eventid"]}

BY_CUSTOMER = {Address: "customerid", Ticket: "customerid"}
"""Homes and tickets go to the state of their customer's shard (a venue's address to none); events to every shard."""


def build(io: FlowIO) -> Dataflow:
    flow = Dataflow("suggested_events_location")
    records = read("addresses_events_tickets", flow, io, READS)
    processed = per_shard(
        "tickets_meet_event_and_home", records, BY_CUSTOMER, HomeShard, (Event,), dead_letters=io, tells=True
    )
    by_zip = rekey("processed_tickets_by_zip", processed, located_zip)
    per_zip = items_per_key("tickets_per_zip", by_zip, ZipTickets, changelog=io.changelog)
    write("zipcode_tickets", per_zip, io, "zipcode-tickets")
    popular = in_order("sales_per_event", records, EVENTS_ONLY, NeighbourWatch, processed)
    alerts = per_shard_join_as_of(
        "neighbours_of_popular_purchases",
        records,
        BY_CUSTOMER,
        Neighbours,
        (Event,),
        popular,
        (Address, Event, Ticket),
        dead_letters=io,
    )
    write("zipcode_popular_event_alerts", alerts, io, "zipcode-popular-event-alerts")
    return flow


flow = kafka_entry_point(build)
