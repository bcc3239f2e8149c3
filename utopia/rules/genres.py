"""Events suggested to the customers who like their genre (suggested_events_genre).

Who likes a genre is known per customer, and an event must reach every customer of its genre. So
the customers are grouped in the shards of `utopia.steps.sharding` (one state serves a whole shard), and
every artist and event record is broadcast to all of them, in input order with the shard's streams:
each shard's state is exactly as of each record, and a new event's fan-out, spread over 24 shards,
leaves as one batch per shard (`GenreShard`).

Tickets are counted per event by the sold_out rule (`utopia.rules.sales.EventStatus`, not rewritten);
the ticket that makes an event nearly sold out asks every shard, as of its place in the input, who
liked the event's genre then (`PopularWatch`, `PopularEvent`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from utopia.codec import InRecord, as_in_record
from utopia.models import Artist, Event, GenreEventSuggestion, Stream, Ticket
from utopia.rules.ranking import TopN
from utopia.rules.sales import EventStatus
from utopia.steps import Item, Lookup, Out, Placed
from utopia.steps.holding import HeldUntilKnown, detached
from utopia.steps.sharding import SHARD_KEYS, shard_of


def genre_never_came(artistid: str) -> str:
    """Why a stream or an event waited until the end of the input."""
    return f"waited for the genre of artist {artistid}, which never arrived"


class PopularEvent(Lookup, frozen=True):
    """An event just became nearly sold out, at `position` of `lane`: who liked its genre then?

    Sent to every shard of customers (`SHARD_KEYS`); each answers for its own customers once it has
    read its lane past that position (docs/outputs.md#ordering).
    """

    eventid: str
    artistid: str


class PopularWatch(EventStatus):
    """Per event: its sales as sold_out counts them; the first NEARLY_SOLD_OUT asks every shard of customers.

    The thresholds are `EventStatus`'s own, so the popular moment is exactly sold_out's alert: checked
    when a ticket is applied (a held ticket at the event record that releases it), never on a capacity
    change alone, never twice. Tickets and events come with their place in the input, which the
    question keeps: the genres and top genres it reads are those as of that place, whenever it arrives.
    """

    __slots__ = ("lane", "position")

    placed = (Event, Ticket)
    holds = (Ticket,)

    def __init__(self, eventid: str):
        super().__init__(eventid)
        self.lane = 0
        self.position = 0

    # Its records come placed, where EventStatus takes them bare: a state of its own step, never used as one.
    def apply(self, placed: Placed) -> Iterator[Item[PopularEvent]]:  # type: ignore[override]
        # a keyed step consumes what a record causes before it applies the next one: `sell` sees this place.
        self.lane, self.position = placed.lane, placed.position
        return super().apply(placed.value)

    def sell(self) -> Iterator[Item[PopularEvent]]:
        for _, alert in super().sell():
            if alert.alert == "NEARLY_SOLD_OUT":
                # The event is known (it sells) and has an artist: the dataflow reads no other (its READS).
                artistid: str = self.event.artistid  # type: ignore[union-attr, assignment]
                question = PopularEvent(self.lane, self.position, self.eventid, artistid)
                yield from ((key, question) for key in SHARD_KEYS)


class HeldForGenre(HeldUntilKnown[Placed]):
    """Records of one artist waiting for its genre, in input order: streams and events together.

    Events are broadcast, so one waits in every shard; it is counted as waiting (and reported as a
    dead letter) only in its own shard, so the process's count and the dead letters have it once.
    """

    __slots__ = ("counted",)

    def __init__(self) -> None:
        super().__init__()
        self.counted = 0

    def hold(self, record: Placed, counted: bool = True) -> None:
        self.waiting.append(detached(record))
        if counted:
            self.counted += 1
            self._count(1)

    def release(self) -> list[Placed]:
        released, self.waiting = self.waiting, []
        if self.counted:
            self._count(-self.counted)
            self.counted = 0
        return released

    def __len__(self) -> int:
        return self.counted

    def __getstate__(self) -> tuple[list[Placed], int]:  # type: ignore[override]
        return self.waiting, self.counted

    def __setstate__(self, state: tuple[list[Placed], int]) -> None:  # type: ignore[override]
        self.waiting, self.counted = state
        self._count(self.counted)


class GenreShard:
    """One shard of customers: their top genres, every artist's genre, and every event, in input order.

    - A customer's top genre is ranked by `TopN` (higher count first, then who reached it first):
      records reach a shard in input order, so the order of `add` calls is processing order. A
      stream counts for its artist's genre when it is applied; a stream of an artist whose genre is
      not known yet waits, and counts when the artist record with a genre releases it.
    - `fans` is the index genre -> the shard's customers whose top genre it is now: a new event
      reaches them at once. Dicts, not sets, so the alerts come in the same order on every run.
    - A popular event is answered later, as of an earlier place in the input, so the changes of
      each customer's top genre (rare: it takes a lead change) and of each artist's genre are kept
      by position; `ever` is who had a genre on top at some time, the only ones to look at.
    - An event keeps the artist it was first seen with; it waits for that artist's genre and is
      new when released. It waits in every shard, but is a dead letter only in its own.
    """

    __slots__ = (
        "shard",
        "genre",
        "genre_history",
        "tops",
        "top_history",
        "fans",
        "ever",
        "waiting",
        "event_artist",
        "announced",
        "popular",
    )

    placed = (Stream, Artist, Event)
    holds = (Stream, Event)
    waits = "streams and events wait for their artist's genre"

    def __init__(self, key: str):
        self.shard = shard_of(key)
        self.genre: dict[str, str | None] = {}
        self.genre_history: dict[str, tuple[list[int], list[str | None]]] = {}
        self.tops: dict[str, TopN[str]] = {}
        self.top_history: dict[str, tuple[list[int], list[str]]] = {}
        self.fans: dict[str, dict[str, None]] = {}
        self.ever: dict[str, dict[str, None]] = {}
        self.waiting: dict[str, HeldForGenre] = {}
        self.event_artist: dict[str, str] = {}
        self.announced: set[str] = set()
        self.popular: set[str] = set()

    def apply(self, placed: Placed) -> list[Out]:
        value = placed.value
        if type(value) is Artist:
            return self.artist(value, placed.position)
        record = value[1]
        if type(record) is Stream:  # with a customer and an artist, which the dataflow requires (its READS)
            genre = self.genre.get(record.artistid)  # type: ignore[arg-type]
            if genre is None:
                self.held(record.artistid).hold(placed)  # type: ignore[arg-type]
                return []
            self.count(record.customerid, genre, placed.position)  # type: ignore[arg-type]
            return []
        artistid = self.event_artist.setdefault(record.id, record.artistid)
        genre = self.genre.get(artistid)
        if genre is None:
            self.held(artistid).hold(placed, shard_of(record.id) == self.shard)
            return []
        return self.new_event(record.id, artistid, genre)

    def held(self, artistid: str) -> HeldForGenre:
        held = self.waiting.get(artistid)
        if held is None:
            held = self.waiting[artistid] = HeldForGenre()
        return held

    def artist(self, artist: Artist, position: int) -> list[Out]:
        genre = artist.genre
        self.genre[artist.id] = genre
        positions, genres = self.genre_history.setdefault(artist.id, ([], []))
        at = bisect.bisect(positions, position)
        positions.insert(at, position)
        genres.insert(at, genre)
        if genre is None or artist.id not in self.waiting:
            return []
        out: list[Out] = []
        for released in self.waiting.pop(artist.id).release():  # at the artist's place in the input
            record = released.value[1]
            if type(record) is Stream:
                self.count(record.customerid, genre, position)  # type: ignore[arg-type]  # required (READS)
            else:
                out.extend(self.new_event(record.id, artist.id, genre))
        return out

    def count(self, customerid: str, genre: str, position: int) -> None:
        top = self.tops.get(customerid)
        if top is None:
            top = self.tops[customerid] = TopN(1)
            before = None
        else:
            before = top.top[0]
        if not top.add(genre) or top.top[0] == before:
            return
        now = top.top[0]
        if before is not None:
            del self.fans[before][customerid]
        self.fans.setdefault(now, {})[customerid] = None
        self.ever.setdefault(now, {})[customerid] = None
        positions, genres = self.top_history.setdefault(customerid, ([], []))
        at = bisect.bisect(positions, position)
        positions.insert(at, position)
        genres.insert(at, now)

    def new_event(self, eventid: str, artistid: str, genre: str) -> list[Out]:
        """An event's first release: one NEW_EVENT for each of the shard's customers who like its genre now."""
        if eventid in self.announced:
            return []
        self.announced.add(eventid)
        return [
            (customer, GenreEventSuggestion(customer, eventid, artistid, genre, "NEW_EVENT"))
            for customer in self.fans.get(genre, ())
        ]

    def read(self, question: PopularEvent) -> list[Out]:
        """POPULAR_EVENT for each of the shard's customers whose top genre was the event's genre, as of the question."""
        if question.eventid in self.popular:
            return []
        self.popular.add(question.eventid)
        position = question.position
        genre = _as_of(self.genre_history.get(question.artistid), position)
        if genre is None:
            return []
        history = self.top_history
        return [
            (customer, GenreEventSuggestion(customer, question.eventid, question.artistid, genre, "POPULAR_EVENT"))
            for customer in self.ever.get(genre, ())
            if _as_of(history[customer], position) == genre
        ]

    def unfinished(self) -> list[tuple[InRecord, str]]:
        letters = []
        for artistid, held in self.waiting.items():
            reason = genre_never_came(artistid)
            for placed in held.release():
                raw, record = placed.value
                if type(record) is Stream or shard_of(record.id) == self.shard:
                    letters.append((as_in_record(raw), reason))
        self.waiting = {}
        return letters


def _as_of(history: tuple[list, list] | None, position: int):
    """The value a history by position had at `position` (None before its first)."""
    if history is None:
        return None
    positions, values = history
    known = bisect.bisect(positions, position)
    return values[known - 1] if known else None
