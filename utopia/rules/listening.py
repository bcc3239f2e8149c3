"""What one customer listens to: their stream count and their top artists (the sample dataflows)."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

from utopia.models import ArtistStreams, CustomerStreamCount, Stream, TopCustomerArtists
from utopia.rules.ranking import TopN
from utopia.steps import Out

TOP_ARTISTS = 3


def just_counted(stream: Stream) -> None:
    """What a stream brings to its customer's count: nothing but the fact that it happened."""
    return None


artist_played: Callable[[Stream], str] = attrgetter("artistid")
"""What a stream brings to its customer's ranking: the artist played (a C getter: called per stream)."""


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
    """One customer's most streamed artists, at most three, ranked (docs/outputs.md#ranking).

    A TopN itself rather than holding one: a third fewer objects per customer to create and reach.
    """

    __slots__ = ("customerid",)

    def __init__(self, customerid: str):
        super().__init__(TOP_ARTISTS)
        self.customerid = customerid

    apply = TopN.add
    """Count one stream of an artist (`artist_played`); True if the top changed. TopN's own method:
    one Python call less per stream."""

    def value(self) -> Out:
        counts = self.counts
        ranked = [ArtistStreams(artist, counts[artist]) for artist in self.top]
        return self.customerid, TopCustomerArtists(self.customerid, ranked)
