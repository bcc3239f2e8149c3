"""Suggested events by genre: tell customers of new and nearly sold-out events in their top genre.

streams + artists + events -> per shard of customers (artists and events to every shard; streams and
        events wait for their artist's genre): each customer's top genre, every artist's genre
        -> at an event's first release, NEW_EVENT to the shard's customers of its genre
events + tickets -> sales per event (tickets wait for their event), as sold_out counts them
        -> at NEARLY_SOLD_OUT, a question to every shard, as of the ticket's place in the input
        -> POPULAR_EVENT to the customers whose top genre was the event's genre then
-> genre-event-suggestions (alert, key customerid)
"""

from bytewax.dataflow import Dataflow

from utopia.codec import Reads
from utopia.io.kafka_io import kafka_entry_point
from utopia.models import Artist, Event, Stream, Ticket
from utopia.rules.genres import GenreShard, PopularWatch
from utopia.rules.sales import counted
from utopia.steps import FlowIO, keyed_state, per_shard_join_as_of, read, write
from utopia.steps.keys import BY_EVENT, BY_LISTENER

READS: Reads = {Artist: [], Event: ["artistid"], Stream: ["customerid", "artistid"], Ticket: ["eventid"]}


def build(io: FlowIO) -> Dataflow:
    flow = Dataflow("suggested_events_genre")
    records = read("artists_events_streams_tickets", flow, io, READS)
    popular = keyed_state(
        "sales_per_event", records, BY_EVENT, PopularWatch, value_of_runs={Ticket: counted}, dead_letters=io
    )
    # A question comes from a ticket, or from the event record that releases held tickets: a batch with
    # either tells every shard how far it has been read, so no question waits for a later batch.
    suggestions = per_shard_join_as_of(  # a stream to its customer's shard; artists and events to every shard
        "genre_fans_per_shard",
        records,
        BY_LISTENER,
        GenreShard,
        (Artist, Event),
        popular,
        (Ticket, Event),
        dead_letters=io,
    )
    write("genre_event_suggestions", suggestions, io, "genre-event-suggestions")
    return flow


flow = kafka_entry_point(build)
