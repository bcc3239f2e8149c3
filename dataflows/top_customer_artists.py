"""Sample: each customer's three most streamed artists.

streams -> rank artists per customer -> top-customer-artists (changelog, key customerid)
"""

from bytewax.dataflow import Dataflow

from utopia.io.kafka_io import kafka_entry_point
from utopia.models import Stream
from utopia.rules.listening import FavouriteArtists, artist_played
from utopia.steps import FlowIO, keyed_state, read, write
from utopia.steps.keys import BY_LISTENER


def build(io: FlowIO) -> Dataflow:
    flow = Dataflow("top_customer_artists")
    streams = read("streams", flow, io, {Stream: ["customerid", "artistid"]})
    tops = keyed_state(
        "rank_artists_per_customer", streams, BY_LISTENER, FavouriteArtists, value=artist_played, changelog=io.changelog
    )
    write("top_customer_artists", tops, io, "top-customer-artists")
    return flow


flow = kafka_entry_point(build)
