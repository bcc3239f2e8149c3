"""The must-see venue: the venue with the most distinct events, and the one with the most distinct customers.

events -> every worker, which learns each event's venue
venues + events + tickets -> tickets whose event's venue is known go straight to the venue
events + the other tickets -> the venue of each event (tickets wait for their event) -> new events and customers
                                         (tickets still waiting at the end -> dead letters)
venues + those + the tickets that came straight -> distinct events and customers per venue, with its name
              (changelog: only changed counts go on) -> the leader of each metric -> must-see-venue
"""

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from utopia.codec import Reads
from utopia.io.kafka_io import kafka_entry_point
from utopia.models import Event, Ticket, Venue
from utopia.rules.venues import (
    EventVenue,
    KnownVenues,
    VenueCounts,
    VenueLeader,
    event_or_customer,
    per_metric,
    venue_fact,
)
from utopia.steps import FlowIO, everywhere, items_per_key, keyed_state, read, shortcut, write
from utopia.steps.keys import BY_EVENT, VENUES

READS: Reads = {Venue: [], Event: ["venueid"], Ticket: ["eventid", "customerid"]}


def build(io: FlowIO) -> Dataflow:
    flow = Dataflow("must_see_venue")
    records = read("venues_events_tickets", flow, io, READS)
    known = KnownVenues()
    everywhere("venue_of_each_event_everywhere", records, Event, known.learn)
    records = shortcut("tickets_straight_to_known_venues", records, Ticket, known.straight_to_venue)
    facts = keyed_state("venue_of_each_event", records, BY_EVENT, EventVenue, value=event_or_customer, dead_letters=io)
    per_venue = keyed_state(
        "counts_per_venue", records, VENUES, VenueCounts, value=venue_fact, also=facts, changelog=io.changelog
    )
    totals = op.map("to_each_metric", per_venue, per_metric)
    leaders = items_per_key("leader_per_metric", totals, VenueLeader, changelog=io.changelog)
    write("must_see_venue", leaders, io, "must-see-venue")
    return flow


flow = kafka_entry_point(build)
