"""Who is most streamed: per artist, over all customers, and each customer's #1 (most_streamed_artists).

Counting spreads over the workers (one state per artist); only changed counts, at most once per
changelog interval, reach the one global ranking, never every stream (docs/outputs.md#most_streamed_artists).
"""

from __future__ import annotations

import msgspec

from utopia.models import Artist, CustomersByTopArtist, NamedArtistStreams, Stream, TopArtists
from utopia.rules.ranking import TopN
from utopia.steps import Item, Out, Placed

GLOBAL = "global"
TOP_ARTISTS = 3


def everyone(_record) -> str:
    """The one key of a ranking over everything."""
    return GLOBAL


class ArtistTotal(msgspec.Struct, frozen=True, gc=False):
    """One artist's stream count, the input position where it was reached, and the artist's latest name."""

    artistid: str
    streams: int
    reached: int
    name: str | None


def stream_or_name(record: Stream | Artist) -> str | None:
    """What reaches an artist's count: nothing of a stream (its place comes with it), of an artist its name."""
    return record.name if isinstance(record, Artist) else None


class ArtistCount(msgspec.Struct, gc=False):
    """Per artist: how many streams over all customers, and its name (null until its record comes)."""

    artistid: str
    streams: int = 0
    reached: int = 0
    name: str | None = None

    placed = (Stream,)
    """A stream comes as its place in the input: where the artist reached its new count."""

    def apply(self, record: Placed | str | None) -> bool:
        if isinstance(record, Placed):
            self.streams += 1
            self.reached = record.position
            return True
        if record == self.name:
            return False
        self.name = record
        return self.streams > 0  # an artist nobody streamed is in no ranking

    def value(self) -> Item[ArtistTotal]:
        return GLOBAL, ArtistTotal(self.artistid, self.streams, self.reached, self.name)


class MostStreamed:
    """The one global ranking: the 3 most streamed artists, ties to whoever reached the count first.

    A rename of an artist in the top is a change too, so the last value shows the latest names.
    """

    __slots__ = ("top", "names")

    def __init__(self, _key: str):
        self.top: TopN[str] = TopN(TOP_ARTISTS)
        self.names: dict[str, str | None] = {}

    def apply(self, total: ArtistTotal) -> bool:
        renamed = self.names.get(total.artistid) != total.name
        self.names[total.artistid] = total.name
        changed = self.top.raise_to(total.artistid, total.streams, total.reached)
        return changed or (renamed and total.artistid in self.top.top)

    def value(self) -> Out:
        names = self.names
        return GLOBAL, TopArtists([NamedArtistStreams(a, names[a], n) for a, n in self.top.ranked()])


class Joined(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """A customer whose #1 artist this now is (or no longer is, `joined` false)."""

    customerid: str
    joined: bool


class NumberOne:
    """One customer's #1 artist, ranked as top_customer_artists ranks (docs/outputs.md#ranking), telling
    artists when it changes (`Joined`).

    Counts grow by one, and ties go to whoever got there first: the #1 changes only when a stream
    takes another artist strictly past its count. So only the counts and the #1 are kept, not a
    top 3 (`TopN`), and a stream costs one Python call.
    """

    __slots__ = ("customerid", "counts", "first")

    def __init__(self, customerid: str):
        self.customerid = customerid
        self.counts: dict[str, int] = {}
        self.first: str | None = None

    def __setstate__(self, state: tuple[None, dict]) -> None:
        """A snapshot of a version that kept the top 3 (a `FavouriteArtists`) resumes with its #1."""
        slots = state[1]
        self.customerid, self.counts = slots["customerid"], slots["counts"]
        self.first = slots["first"] if "first" in slots else next(iter(slots["top"]), None)

    def apply(self, artistid: str) -> tuple[Item[Joined], ...]:
        counts = self.counts
        count = counts[artistid] = counts.get(artistid, 0) + 1
        first = self.first
        if first is not None and (first == artistid or count <= counts[first]):
            return ()
        self.first = artistid
        if first is None:
            return ((artistid, Joined(self.customerid, True)),)
        return (first, Joined(self.customerid, False)), (artistid, Joined(self.customerid, True))


class CustomersOfArtist:
    """Per artist: the customers whose #1 artist it is, sorted as strings when written (empty when none left)."""

    __slots__ = ("artistid", "customers")

    def __init__(self, artistid: str):
        self.artistid = artistid
        self.customers: set[str] = set()

    def apply(self, change: Joined) -> bool:
        if change.joined:
            self.customers.add(change.customerid)
        else:
            self.customers.discard(change.customerid)
        return True

    def value(self) -> Out:
        return self.artistid, CustomersByTopArtist(self.artistid, sorted(self.customers))
