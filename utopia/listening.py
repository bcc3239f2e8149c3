"""What one customer listens to: their stream count and their top artists (the sample dataflows)."""

from __future__ import annotations

from utopia.models import ArtistStreams, CustomerStreamCount, Stream, TopCustomerArtists
from utopia.ranking import TopN
from utopia.steps import Out

TOP_ARTISTS = 3


class StreamCount:
    """How many streams one customer has played."""

    __slots__ = ("customerid", "streams")

    def __init__(self, customerid: str):
        self.customerid = customerid
        self.streams = 0

    def apply(self, stream: Stream) -> bool:
        self.streams += 1
        return True

    def value(self) -> Out:
        return self.customerid, CustomerStreamCount(self.customerid, self.streams)


class FavouriteArtists:
    """One customer's most streamed artists, at most three, ranked (SPEC ranking rule)."""

    __slots__ = ("customerid", "artists")

    def __init__(self, customerid: str):
        self.customerid = customerid
        self.artists: TopN[str] = TopN(TOP_ARTISTS)

    def apply(self, stream: Stream) -> bool:
        return self.artists.add(stream.artistid)

    def value(self) -> Out:
        ranked = [ArtistStreams(artist, streams) for artist, streams in self.artists.ranked()]
        return self.customerid, TopCustomerArtists(self.customerid, ranked)
