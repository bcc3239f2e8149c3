"""Sample: each customer's three most streamed artists.

streams -> rank artists per customer -> top-customer-artists (changelog, key customerid)
"""

from bytewax.dataflow import Dataflow

from utopia.kafka_io import kafka_entry_point
from utopia.keys import BY_LISTENER
from utopia.listening import FavouriteArtists, artist_played
from utopia.models import Stream
from utopia.steps import FlowIO, per_key, read, write


def build(io: FlowIO) -> Dataflow:
    flow = Dataflow("top_customer_artists")
    streams = read("streams", flow, io, {Stream: ["customerid", "artistid"]})
    tops = per_key(
        "rank_artists_per_customer", streams, BY_LISTENER, FavouriteArtists, value=artist_played, changelog=io.changelog
    )
    write("top_customer_artists", tops, io, "top-customer-artists")
    return flow


flow = kafka_entry_point(build)
