"""What one customer listens to: their stream count and their top artists (the sample dataflows)."""

from __future__ import annotations

from utopia.models import ArtistStreams, CustomerStreamCount, Stream, TopCustomerArtists
from utopia.ranking import TopN
from utopia.steps import Out

TOP_ARTISTS = 3


def just_counted(stream: Stream) -> None:
    """What a stream brings to its customer's count: nothing but the fact that it happened."""
    return None


def artist_played(stream: Stream) -> str | None:
    """What a stream brings to its customer's ranking: the artist played."""
    return stream.artistid


class StreamCount:
    """How many streams one customer has played."""

    __slots__ = ("customerid", "streams")

    def __init__(self, customerid: str):
        self.customerid = customerid
        self.streams = 0

    def apply(self, _: None) -> bool:
        self.streams += 1
        return True

    def value(self) -> Out:
        return self.customerid, CustomerStreamCount(self.customerid, self.streams)


class FavouriteArtists(TopN[str]):
    """One customer's most streamed artists, at most three, ranked (SPEC ranking rule).

    A TopN itself rather than holding one: a third fewer objects per customer to create and reach.
    """

    __slots__ = ("customerid",)

    def __init__(self, customerid: str):
        super().__init__(TOP_ARTISTS)
        self.customerid = customerid

    def apply(self, artistid: str) -> bool:
        return self.add(artistid)

    def value(self) -> Out:
        counts = self.counts
        ranked = [ArtistStreams(artist, counts[artist]) for artist in self.top]
        return self.customerid, TopCustomerArtists(self.customerid, ranked)
