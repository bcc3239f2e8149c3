"""Most streamed artists: the top 3 overall, customers grouped by their #1 artist, and each hour's trending artists.

streams + artists -> streams per artist (with its name) -> the one global top 3 -> top-artists (changelog, key global)
streams -> each customer's ranking of artists, on a new #1 -> customers per #1 artist
        -> customers-by-top-artist (changelog, key artistid)
streams -> per hour of streamtime, per batch -> Bytewax's hour windows (event time, 5 minutes of wait)
        -> + the artists' names -> trending-artists (window, key window start)
"""

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import fold_window

from utopia.codec import Reads
from utopia.io.kafka_io import kafka_entry_point
from utopia.models import Artist, Stream
from utopia.rules.listening import artist_played
from utopia.rules.popularity import ArtistCount, CustomersOfArtist, MostStreamed, NumberOne, stream_or_name
from utopia.rules.trending import (
    CLOCK,
    HOURS,
    ArtistNames,
    add_hour,
    closed_window,
    closings,
    empty_hour,
    hour_counts,
    is_hour,
    late_streams,
)
from utopia.steps import FlowIO, items_per_key, keyed_state, read, write
from utopia.steps.keys import ARTIST_NAMES_FOR_ALL, BY_LISTENER, STREAMS_AND_NAME_BY_ARTIST

READS: Reads = {Stream: ["customerid", "artistid"], Artist: []}


def build(io: FlowIO) -> Dataflow:
    flow = Dataflow("most_streamed_artists")
    records = read("streams_and_artists", flow, io, READS, caught_up=True)  # the hours closed by the wall clock
    per_artist = keyed_state(
        "streams_per_artist",
        records,
        STREAMS_AND_NAME_BY_ARTIST,
        ArtistCount,
        value=stream_or_name,
        changelog=io.changelog,
    )
    top = items_per_key("most_streamed_overall", per_artist, MostStreamed, changelog=io.changelog)
    write("top_artists", top, io, "top-artists")
    new_number_ones = keyed_state("number_one_per_customer", records, BY_LISTENER, NumberOne, value=artist_played)
    fans = items_per_key("customers_per_number_one", new_number_ones, CustomersOfArtist, changelog=io.changelog)
    write("customers_by_top_artist", fans, io, "customers-by-top-artist")
    hourly = op.branch("hour_or_closing", op.flat_map("streams_per_hour", records, hour_counts), is_hour)
    hours = fold_window("trending_per_hour", hourly.trues, CLOCK, HOURS, empty_hour, add_hour, add_hour, ordered=False)
    op.inspect("late_for_their_hour", hours.late, lambda _step, late: late_streams(late))
    closed = op.merge(
        "closed_hours",
        op.map("each_closed_hour", hours.down, closed_window),
        op.map("where_hours_closed", hourly.falses, closings),
    )
    trending = keyed_state("name_trending_artists", records, ARTIST_NAMES_FOR_ALL, ArtistNames, also=closed)
    write("trending_artists", trending, io, "trending-artists")
    return flow


flow = kafka_entry_point(build)
