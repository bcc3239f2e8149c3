"""A consistent, seeded data-demo world: what the Java data-demo's mock data looks like, for any size.

Every reference resolves and timestamps are causal (a customer before their address, an event
before its tickets). Popularity is skewed (a few artists get most streams; customers favour one or
two genres; customers cluster in a few zip codes and go to events near them), so top-N, genre and
location scenarios have something to find. The same seed gives the same records, byte for byte.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import msgspec

from utopia.dates import format_instant
from utopia.models import Address, Artist, Customer, Email, Event, Phone, Record, Stream, Ticket, Venue
from utopia.tools.reference_data import cities, venues, zip_codes

START_MS = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
"""When a data set begins unless told (`utopia generate --start`), to files and Kafka alike: a fixed date, so
that the same seed gives the same records on any day."""
DAY_MS = 86_400_000
SPAN_MS = 6 * 3_600_000
"""The least time a generated data set's activity spans."""
GENRES = ("Pop", "Rock", "Hip-Hop", "Country", "Jazz", "Electronic", "R&B", "Classical", "Metal", "Folk")
FIRST = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan "
    "Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Betty Mark Sandra"
).split()
LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Clark Lewis"
).split()
ADJECTIVES = (
    "Electric Silent Velvet Golden Broken Neon Wild Midnight Crimson Hollow Lucky Northern Paper "
    "Atomic Gentle Lonely Rusty Cosmic Frozen Restless"
).split()
NOUNS = (
    "Wolves Rivers Engines Ghosts Hearts Comets Pilots Tigers Lanterns Echoes Mirrors Foxes Anchors "
    "Canyons Sparrows Kings Satellites Owls Harbors Drums"
).split()
FORMS = ("", " Band", " Collective", " Trio", " Orchestra", " Club")
STREETS = "Main Oak Pine Maple Cedar Elm Washington Lake Hill Park".split()


@dataclass(frozen=True)
class Sizes:
    """How many records of each kind a data set has; every one at least 1 (a ticket needs an event and a buyer)."""

    customers: int = 2000
    artists: int = 200
    events: int = 300
    tickets: int = 20000
    streams: int = 100000
    zipcodes: int = 25


@dataclass(frozen=True)
class Rates:
    """The mix of a live world, as records per second (only their proportions matter)."""

    streams_per_s: float = 50
    tickets_per_s: float = 5
    customers_per_s: float = 0.5
    events_per_s: float = 0.1


class Generated(NamedTuple):
    topic: str  # short input topic name: "customers", "streams", ...
    key: str
    value: Record
    timestamp: int  # epoch milliseconds


def timestamp_string(epoch_ms: int) -> str:
    """`java.sql.Timestamp.toString()`, as the data-demo producer writes an eventdate: `2027-06-26 21:19:45.676`.

    The producer writes its JVM's local wall time with no zone; this writes UTC, the zone the
    project reads zone-less dates in by default. The fraction loses its trailing zeros but keeps
    at least one digit (`.0`, `.58`).
    """
    wall = datetime(1970, 1, 1) + timedelta(milliseconds=epoch_ms)
    fraction = f"{epoch_ms % 1000:03d}".rstrip("0") or "0"
    return f"{wall.isoformat(' ', 'seconds')}.{fraction}"


def _zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return list(itertools.accumulate(1 / (rank**s) for rank in range(1, n + 1)))


class World:
    """The entities of one generated world and the draws that keep it consistent."""

    def __init__(self, rng: random.Random, zipcodes: int, namespace: str = ""):
        self.rng = rng
        self.namespace = namespace  # in every id but the venues' (see `live_namespace`)
        self.customers: list[str] = []
        self.customer_zip: list[str] = []
        self.favourites: list[tuple[str, ...]] = []
        self.artists: list[str] = []
        self.events: list[tuple[str, int]] = []  # (id, index of its artist)
        self.venues: list[tuple[str, int]] = []  # (id, max capacity)
        self.zip_city = self._choose_zips(zipcodes)
        self.zips = list(self.zip_city)
        self.by_genre: dict[str, list[int]] = {g: [] for g in GENRES}

    def _choose_zips(self, count: int) -> dict[str, tuple[str, str, float, float]]:
        """Zip codes of the largest cities (zip -> city, state, lat, lon), so customers cluster in a few."""
        known = [c for c in cities() if zip_codes().get((c.name, c.state))]
        chosen: dict[str, tuple[str, str, float, float]] = {}
        for city in known[: max(1, count // 3)]:
            zs = sorted(zip_codes()[(city.name, city.state)])
            for zip5 in self.rng.sample(zs, min(len(zs), 3)):
                chosen[zip5] = (city.name, city.state, city.lat, city.lon)
        return dict(list(chosen.items())[:count])

    # --- records -------------------------------------------------------------------------------

    def artist(self, index: int, name_code: int) -> Artist:
        adjective, rest = divmod(name_code, len(NOUNS) * len(FORMS))
        noun, form = divmod(rest, len(FORMS))
        genre = GENRES[min(int(self.rng.expovariate(0.35)), len(GENRES) - 1)]
        artistid = f"a-{self.namespace}{index:05d}"
        self.artists.append(artistid)
        self.by_genre[genre].append(index)
        return Artist(artistid, f"The {ADJECTIVES[adjective]} {NOUNS[noun]}{FORMS[form]}", genre)

    def customer(self, index: int, now_ms: int) -> list[tuple[str, str, Record]]:
        """A customer with their RESID address, emails (0-2) and phones (1-2)."""
        rng = self.rng
        ns = self.namespace
        customerid = f"c-{ns}{index:07d}"
        first, last = rng.choice(FIRST), rng.choice(LAST)
        gender = rng.choice("MF")
        birth = datetime.fromtimestamp(now_ms / 1000 - rng.uniform(18, 75) * 365.25 * 86400, UTC)
        joined = datetime.fromtimestamp(now_ms / 1000 - rng.uniform(0, 8) * 365.25 * 86400, UTC)
        self.customers.append(customerid)
        self.favourites.append(tuple(rng.sample(GENRES[:6], rng.choice((1, 2)))))
        out: list[tuple[str, str, Record]] = [
            (
                "customers",
                customerid,
                Customer(
                    customerid,
                    type="INDIVIDUAL",
                    gender=gender,
                    fname=first,
                    mname=rng.choice((None, "A", "J", "M")),
                    lname=last,
                    fullname=f"{first} {last}",
                    suffix=rng.choice((None,) * 9 + ("Jr",)),
                    title=rng.choice((None, "Mr", "Ms", "Dr")),
                    birthdt=birth.date().isoformat(),
                    joindt=joined.date().isoformat(),
                ),
            )
        ]
        zip5 = self.rng.choice(self.zips)
        self.customer_zip.append(zip5)
        out.append(self.home(customerid, f"ad-{ns}{index:07d}", zip5))
        for n in range(rng.choices((0, 1, 2), (10, 70, 20))[0]):
            out.append(self.email(customerid, f"em-{ns}{index:07d}-{n}", first, last))
        for n in range(rng.choice((1, 2))):
            number = f"{rng.randint(201, 989)}-555-{rng.randint(0, 9999):04d}"
            phoneid = f"ph-{ns}{index:07d}-{n}"
            out.append(
                (
                    "phones",
                    phoneid,
                    Phone(
                        phoneid,
                        customerid,
                        rng.choice(("HOME", "MOBILE", "WORK")),
                        "Y" if n == 0 else "N",
                        "America/Chicago",
                        None,
                        number,
                    ),
                )
            )
        return out

    def home(self, customerid: str, addressid: str, zip5: str) -> tuple[str, str, Address]:
        city, state, lat, lon = self.zip_city[zip5]
        rng = self.rng
        return (
            "addresses",
            addressid,
            Address(
                addressid,
                customerid,
                "US",
                "RESID",
                f"{rng.randint(1, 9999)} {rng.choice(STREETS)} St",
                None,
                city,
                state,
                zip5,
                f"{rng.randint(0, 9999):04d}",
                "US",
                round(lat + rng.uniform(-0.05, 0.05), 6),
                round(lon + rng.uniform(-0.05, 0.05), 6),
            ),
        )

    def email(self, customerid: str, emailid: str, first: str, last: str) -> tuple[str, str, Email]:
        domain = self.rng.choice(("example.com", "mail.test", "utopia.example"))
        address = f"{first}.{last}{self.rng.randint(1, 999)}@{domain}".lower()
        return ("emails", emailid, Email(emailid, customerid, address))

    def venue_records(self) -> Iterator[tuple[str, str, Record]]:
        """The real venues (utopia/data/venues.csv): the same records in every world, a live feed's too, so
        their ids have no namespace."""
        for n, v in enumerate(venues()):
            venueid, addressid = f"v-{n:03d}", f"ad-v-{n:03d}"
            self.venues.append((venueid, v.capacity))
            yield (
                "addresses",
                addressid,
                Address(
                    addressid, None, "US", "VENUE", v.street, None, v.city, v.state, v.zip5, None, "US", v.lat, v.lon
                ),
            )
            yield "venues", venueid, Venue(venueid, addressid, v.name, v.capacity)

    def event(self, index: int, artist: int, now_ms: int, small: bool) -> Event:
        venueid, max_capacity = self.rng.choice(self.venues)
        capacity = self.rng.randint(5, 60) if small else self.rng.randint(max(61, max_capacity // 10), max_capacity)
        # Any moment from 60 days before to 180 after, at any time of day, like the data-demo's random
        # dates; in whole seconds, tenths, hundredths or milliseconds alike, as uniform milliseconds
        # would almost always give three digits and readers must take `.0` and `.6` too.
        step = self.rng.choice((1000, 100, 10, 1))
        when = now_ms - now_ms % 1000 + self.rng.randrange(-60 * DAY_MS, 180 * DAY_MS, step)
        eventid = f"e-{self.namespace}{index:06d}"
        self.events.append((eventid, artist))
        return Event(eventid, self.artists[artist], venueid, capacity, timestamp_string(when))


def generate(sizes: Sizes, seed: int = 42, start_ms: int = START_MS) -> Iterator[Generated]:
    """A finite data set in timestamp order from `start_ms`: first the tables, then events, tickets and streams."""
    rng = random.Random(seed)
    clock = start_ms
    world = World(rng, sizes.zipcodes)

    # Every name once before any name twice (only with more artists than names).
    names = range(len(ADJECTIVES) * len(NOUNS) * len(FORMS))
    codes: list[int] = []
    while len(codes) < sizes.artists:
        codes += rng.sample(names, min(sizes.artists - len(codes), len(names)))
    for index, code in enumerate(codes):
        artist = world.artist(index, code)
        clock += 5
        yield Generated("artists", artist.id, artist, clock)
    for topic, key, value in world.venue_records():
        clock += 5
        yield Generated(topic, key, value, clock)
    for index in range(sizes.customers):
        for topic, key, value in world.customer(index, clock):
            clock += 1
            yield Generated(topic, key, value, clock)

    yield from _one_per_millisecond(_activity(world, sizes, rng, clock + 1000))


def _capacity(event: Event) -> int:
    """A generated event's capacity, which it always has (only a decoded one may lack it)."""
    assert event.capacity is not None
    return event.capacity


def _one_per_millisecond(records: Iterator[Generated]) -> Iterator[Generated]:
    """The same records with strictly increasing timestamps (a tie moves on by a millisecond).

    Records of different topics and partitions are replayed in timestamp order; with no two at one
    millisecond, that order is the generated one however the topics are partitioned, in file mode
    and on Kafka alike.
    """
    last = -1
    for record in records:
        if record.timestamp <= last:
            record = record._replace(timestamp=last + 1)
        last = record.timestamp
        yield record


def _activity(world: World, sizes: Sizes, rng: random.Random, begin: int) -> Iterator[Generated]:
    """Events, tickets, streams and later table updates, merged by timestamp."""
    # Several hours at least, so that hourly windows (trending-artists) close within a data set.
    span = max(SPAN_MS, (sizes.streams + sizes.tickets) * 5)
    end = begin + span
    artist_weights = _zipf_weights(len(world.artists), 1.3)
    ranked_artists = rng.sample(range(len(world.artists)), len(world.artists))  # popularity order

    # Events appear over the first half; popular artists get more of them, a fifth are small.
    events = []
    for index in range(sizes.events):
        artist = ranked_artists[bisect.bisect(artist_weights, rng.random() * artist_weights[-1])]
        at = begin + int(rng.random() * span / 2)
        events.append((at, world.event(index, artist, at, small=rng.random() < 0.2)))
    resent = [
        (
            at + 1 + int(rng.random() * (end - at - 1)),
            msgspec.structs.replace(e, capacity=_capacity(e) + rng.randint(1, 50)),
        )
        for at, e in events
        if rng.random() < 0.05
    ]

    # Tickets: small events get enough to sell out (and some over); the rest follow artist popularity.
    per_event = [0] * len(events)
    budget = sizes.tickets
    for i, (_, e) in enumerate(events):
        if _capacity(e) <= 60 and budget > 0:
            per_event[i] = min(budget, _capacity(e) + rng.randint(0, _capacity(e) // 2 + 2))
            budget -= per_event[i]
    big = [i for i, (_, e) in enumerate(events) if _capacity(e) > 60] or list(range(len(events)))
    if events and budget > 0:
        weights = _zipf_weights(len(big), 0.9)
        for _ in range(budget):
            per_event[big[bisect.bisect(weights, rng.random() * weights[-1])]] += 1
    by_zip: dict[str, list[int]] = {}
    for c, z in enumerate(world.customer_zip):
        by_zip.setdefault(z, []).append(c)
    # Only zips where someone lives: with few customers, some chosen zips have nobody.
    inhabited = [by_zip[z] for z in world.zips if z in by_zip]
    tickets = []
    for i, count in enumerate(per_event):
        at, event = events[i]
        local = rng.choice(inhabited)
        for _ in range(count):
            # Half the buyers come from one zip near the event, so "popular in my zip" happens.
            buyer = rng.choice(local) if rng.random() < 0.5 else rng.randrange(len(world.customers))
            tickets.append((at + 1 + int(rng.random() * (end - at - 1)), buyer, event.id))
    tickets.sort()

    # Customers who move house or get a new email address later on (table updates).
    updates: list[tuple[int, tuple[str, str, Record]]] = []
    for c, customerid in enumerate(world.customers):
        roll = rng.random()
        if roll < 0.05:
            at = begin + int(rng.random() * span)
            updates.append((at, world.home(customerid, f"ad-{c:07d}-2", rng.choice(world.zips))))
        elif roll < 0.10:
            at = begin + int(rng.random() * span)
            updates.append((at, world.email(customerid, f"em-{c:07d}-9", "new", f"mail{c}")))
    updates.sort(key=lambda u: u[0])

    def event_records() -> Iterator[Generated]:
        for at, e in sorted(events + resent, key=lambda pair: pair[0]):
            yield Generated("events", e.id, e, at)

    def ticket_records() -> Iterator[Generated]:
        for n, (at, buyer, eventid) in enumerate(tickets):
            ticketid = f"t-{n:08d}"
            yield Generated(
                "tickets",
                ticketid,
                Ticket(ticketid, world.customers[buyer], eventid, round(rng_tickets.uniform(20, 250), 2)),
                at,
            )

    def update_records() -> Iterator[Generated]:
        for at, (topic, key, value) in updates:
            yield Generated(topic, key, value, at)

    def stream_records() -> Iterator[Generated]:
        # Within a genre, the globally popular artists are the popular ones too.
        popularity = {artist: rank for rank, artist in enumerate(ranked_artists)}
        by_genre = {g: sorted(ids, key=popularity.__getitem__) for g, ids in world.by_genre.items() if ids}
        genre_weights = {g: _zipf_weights(len(ids), 1.3) for g, ids in by_genre.items()}
        times = sorted(begin + int(rng_streams.random() * span) for _ in range(sizes.streams))
        for n, at in enumerate(times):
            c = rng_streams.randrange(len(world.customers))
            genre = rng_streams.choice(world.favourites[c])
            if genre in genre_weights and rng_streams.random() < 0.7:
                ids, weights = by_genre[genre], genre_weights[genre]
                artist = ids[bisect.bisect(weights, rng_streams.random() * weights[-1])]
            else:
                artist = ranked_artists[bisect.bisect(artist_weights, rng_streams.random() * artist_weights[-1])]
            streamid = f"s-{n:09d}"
            yield Generated(
                "streams",
                streamid,
                Stream(
                    streamid,
                    world.customers[c],
                    world.artists[artist],
                    format_instant(datetime.fromtimestamp(at / 1000, UTC)),
                ),
                at,
            )

    # Separate random streams for lazily built records, so the merge order cannot change any draw.
    rng_tickets, rng_streams = random.Random(rng.random()), random.Random(rng.random())
    # Ties: events first (a ticket is always strictly later than its event anyway).
    yield from heapq.merge(
        event_records(), update_records(), ticket_records(), stream_records(), key=lambda g: g.timestamp
    )


def live_namespace(epoch_ms: int) -> str:
    """The ids of a live feed started at `epoch_ms`: `L` and its second in base 36 (`e-Ltpo5zc-000003`).

    A live feed is a world of its own, with its own artists, customers and events. With the ids of
    a generated data set (which have no namespace) or of an earlier feed, its records replaced
    theirs: events moved to other artists and a dashboard showed `SOLD_OUT e-000004: 80 of 17 sold`.
    """
    digits, n = "", epoch_ms // 1000
    while n:
        n, digit = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
    return f"L{digits or '0'}-"


def live(
    seed: int = 42, rates: Rates = Rates(), clock: Callable[[], int] | None = None, namespace: str | None = None
) -> Iterator[Generated]:
    """An endless live world, like the data-demo daemon: a small base world, then a steady mix forever.

    Timestamps come from `clock` (default: wall time in ms); pacing is the caller's job. Ids are in
    `namespace` (default: `live_namespace` of the clock's first reading); venues are shared.
    """
    rng = random.Random(seed)
    now = clock or (lambda: int(datetime.now(UTC).timestamp() * 1000))
    ns = live_namespace(now()) if namespace is None else namespace
    world = World(rng, 25, ns)
    for index, code in enumerate(rng.sample(range(len(ADJECTIVES) * len(NOUNS) * len(FORMS)), 100)):
        artist = world.artist(index, code)
        yield Generated("artists", artist.id, artist, now())
    for topic, key, value in world.venue_records():
        yield Generated(topic, key, value, now())
    customers = itertools.count()
    for _ in range(200):
        for topic, key, value in world.customer(next(customers), now()):
            yield Generated(topic, key, value, now())
    events = itertools.count()
    artist_weights = _zipf_weights(len(world.artists))

    def new_event() -> Generated:
        artist = bisect.bisect(artist_weights, rng.random() * artist_weights[-1])
        e = world.event(next(events), artist, now(), small=rng.random() < 0.3)
        return Generated("events", e.id, e, now())

    for _ in range(10):
        yield new_event()
    kinds = ("streams", "tickets", "customers", "events")
    weights = (rates.streams_per_s, rates.tickets_per_s, rates.customers_per_s, rates.events_per_s)
    for n in itertools.count():
        kind = rng.choices(kinds, weights)[0]
        if kind == "streams":
            c = rng.randrange(len(world.customers))
            played = bisect.bisect(artist_weights, rng.random() * artist_weights[-1])
            at = now()
            s = Stream(
                f"s-{ns}{n:010d}",
                world.customers[c],
                world.artists[played],
                format_instant(datetime.fromtimestamp(at / 1000, UTC)),
            )
            yield Generated("streams", s.id, s, at)
        elif kind == "tickets":
            eventid, _ = rng.choice(world.events)
            t = Ticket(f"t-{ns}{n:010d}", rng.choice(world.customers), eventid, round(rng.uniform(20, 250), 2))
            yield Generated("tickets", t.id, t, now())
        elif kind == "customers":
            for topic, key, value in world.customer(next(customers), now()):
                yield Generated(topic, key, value, now())
        else:
            yield new_event()
