"""Global totals: distinct customers and events, streams, tickets, and how many events have taken place.

customers        -> seen per customer id -> new customers, added up per shard -> partial counts
streams          -> counted per batch, by the worker that read it              -> partial counts
events + tickets -> per event: its date and tickets (tickets wait for it)      -> partial counts
partial counts   -> added up at one key, events occurred by the clock -> global-totals (changelog, key totals)
"""

from functools import partial

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from utopia.codec import Reads
from utopia.io.kafka_io import kafka_entry_point
from utopia.models import Customer, Event, Stream, Ticket
from utopia.rules.sales import counted
from utopia.rules.totals import (
    CUSTOMER_IDS,
    Clock,
    CustomerSeen,
    EventTotals,
    Totals,
    added_up,
    just_seen,
    streams_read,
)
from utopia.steps import FlowIO, items_per_key, keyed_state, read, write
from utopia.steps.keys import BY_EVENT

READS: Reads = {Customer: [], Stream: [], Event: [], Ticket: ["eventid"]}


def build(io: FlowIO, clock: Clock = Clock()) -> Dataflow:
    flow = Dataflow("global_totals")
    records = read("customers_streams_events_tickets", flow, io, READS)
    seen = keyed_state(
        "seen_per_customer", records, CUSTOMER_IDS, CustomerSeen, value=just_seen, changelog=io.changelog
    )
    new_customers = op.map("new_customers_per_shard", seen, added_up)
    streams = op.map("streams_per_batch", records, streams_read)
    events = keyed_state(
        "date_and_tickets_per_event",
        records,
        BY_EVENT,
        EventTotals,
        value_of_runs={Ticket: counted},
        changelog=io.changelog,
        dead_letters=io,
    )
    partial_counts = op.merge("partial_counts", new_customers, streams, events)
    totals = items_per_key(  # all for the key `totals`
        "add_up_partial_counts",
        partial_counts,
        partial(Totals, clock=clock),
        changelog=io.changelog,
        recheck=clock.every,
    )
    write("global_totals", totals, io, "global-totals")
    return flow


flow = kafka_entry_point(build)
