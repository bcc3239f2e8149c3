"""Hypothesis strategies: small random worlds with collisions on purpose (few ids, many records)."""

from hypothesis import strategies as st

from utopia.models import Artist, Email, Event, Stream, Ticket

customers = st.sampled_from([f"c{i}" for i in range(6)])
artists = st.sampled_from([f"a{i}" for i in range(6)])
events = st.sampled_from([f"e{i}" for i in range(4)])
bad_values = st.sampled_from([b"{not json", b"[1, 2]", b'"text"', b'{"customerid": "c1"}', b"\xff\xfe", b'{"id": 7}'])


def _event(i, eventid, capacity):
    # An event keeps its artist when it is re-sent, as data-demo's do.
    return Event(
        eventid,
        artistid=f"a{int(eventid[1:]) % 3}",
        venueid="v1",
        capacity=capacity,
        eventdate="Mon Mar 01 20:00:00 UTC 2027",
    )


KINDS = {
    "stream": (st.tuples(customers, artists), lambda i, c, a: Stream(f"s{i}", c, a)),
    "event": (st.tuples(events, st.one_of(st.integers(0, 12), st.none())), _event),
    "ticket": (st.tuples(events, customers), lambda i, e, c: Ticket(f"t{i}", customerid=c, eventid=e, price=10.0)),
    "email": (
        st.tuples(customers, st.sampled_from(["x@a.io", "y@b.io", None])),
        lambda i, c, address: Email(f"m{i}", customerid=c, email=address),
    ),
    "artist": (
        st.tuples(artists, st.sampled_from(["Alpha", "Beta", None])),
        lambda i, a, name: Artist(a, name=name, genre="Pop"),
    ),
}


def record_log(bad_topic: str, **weights: int) -> st.SearchStrategy[list]:
    """Records of the named kinds (`kind=weight`), in any order, plus bad values on `bad_topic` and tombstones."""
    choices = [st.tuples(st.just(kind), KINDS[kind][0]) for kind, weight in weights.items() for _ in range(weight)]
    choices.append(st.tuples(st.just("bad"), bad_values.map(lambda raw: (raw,))))
    choices.append(st.just(("tombstone", ())))

    def build(items):
        out = []
        for i, (kind, args) in enumerate(items):
            if kind == "bad":
                out.append((bad_topic, args[0]))
            elif kind == "tombstone":
                out.append((bad_topic, None))
            else:
                out.append(KINDS[kind][1](i, *args))
        return out

    return st.lists(st.one_of(choices), max_size=150).map(build)


def stream_log():
    return record_log("streams", stream=3)


def ticket_log():
    """Events (re-sent with new capacities, sometimes null) and tickets."""
    return record_log("tickets", event=1, ticket=2)


def streams_and_artists_log():
    """Streams and (re)named artists; a stream's time is its record's (its place in the log, in ms)."""
    return record_log("streams", stream=4, artist=1)


def sold_out_log():
    return record_log("tickets", event=1, ticket=2, stream=2, email=1)


# global_totals: customers, and events re-sent with dates that move around one moment.
from utopia.models import Customer  # noqa: E402 (appended with the kinds below)

EVENT_DATES = st.sampled_from(
    [
        "2027-06-26 21:19:45.675",  # a millisecond before 2027-06-26T21:19:45.676Z (the tests' clock)
        "2027-06-26 21:19:45.676",  # that moment itself: not before it
        "2027-06-26T16:19:45.677-05:00",  # a millisecond after
        "Mon Mar 01 20:00:00 UTC 2027",
        "2027-07-01",
        "today",  # in no accepted form: the date is unknown
        None,
    ]
)
KINDS["customer"] = (st.tuples(customers), lambda i, c: Customer(c, fname=f"n{i}"))
KINDS["dated_event"] = (
    st.tuples(events, EVENT_DATES),
    lambda i, e, date: Event(e, artistid="a1", venueid="v1", capacity=5, eventdate=date),
)


def global_totals_log():
    """Customers (re-sent), streams, events (re-sent with moving dates) and tickets, some for events that never come."""
    return record_log("events", customer=1, stream=2, dated_event=1, ticket=2)


# must_see_venue: venues (renamed), events (re-sent, sometimes with another venue) and tickets.
from utopia.models import Venue  # noqa: E402 (appended with the kinds below)

venue_ids = st.sampled_from([f"v{i}" for i in range(3)])
KINDS["venue"] = (
    st.tuples(venue_ids, st.sampled_from(["Hall", "Arena", None])),
    lambda i, v, name: Venue(v, name=name),
)
KINDS["event_at_venue"] = (st.tuples(events, venue_ids), lambda i, e, v: Event(e, artistid="a1", venueid=v, capacity=5))


def must_see_venue_log():
    """Venues, events at random venues (re-sent ones may name another) and tickets, some for events that never come."""
    return record_log("tickets", venue=1, event_at_venue=1, ticket=3)


# suggested_events_genre: artists whose genre changes (or is null), streams, events (some re-sent with
# another artist, which they do not follow) and tickets, some for artists or events that never come.
genres = st.sampled_from(["Pop", "Jazz", "Rock", "Pop", "Jazz", None])
genre_artists = st.sampled_from([f"a{i}" for i in range(5)])  # a4 is never sent: its streams and events wait
KINDS["genre_artist"] = (
    st.tuples(st.sampled_from([f"a{i}" for i in range(4)]), genres),
    lambda i, a, genre: Artist(a, name=f"n{i}", genre=genre),
)
KINDS["genre_stream"] = (st.tuples(customers, genre_artists), lambda i, c, a: Stream(f"s{i}", c, a))
KINDS["moved_event"] = (
    st.tuples(events, genre_artists, st.one_of(st.integers(0, 6), st.none())),
    lambda i, e, a, capacity: Event(e, artistid=a, venueid="v1", capacity=capacity),
)


def genre_log():
    """As `record_log`, but never short: customers need streams for top genres, events tickets to sell out."""
    weights = {"genre_artist": 2, "genre_stream": 6, "event": 1, "moved_event": 1, "ticket": 4}
    choices = [st.tuples(st.just(kind), KINDS[kind][0]) for kind, weight in weights.items() for _ in range(weight)]
    choices += [st.tuples(st.just("bad"), bad_values.map(lambda raw: (raw,))), st.just(("tombstone", ()))]

    def build(items):
        return [
            ("streams", args[0])
            if kind == "bad"
            else ("streams", None)
            if kind == "tombstone"
            else KINDS[kind][1](i, *args)
            for i, (kind, args) in enumerate(items)
        ]

    return st.lists(st.one_of(choices), min_size=40, max_size=200).map(build)


# suggested_events_location: homes (customers move between 3 zips; some addresses are venues', one
# a customer's with that customer's zip), events (re-sent, capacities small or null) and tickets.
from utopia.models import Address  # noqa: E402 (appended with the kinds below)

zips = st.sampled_from(["11111", "22222", "33333"])
KINDS["home"] = (
    st.tuples(customers, zips, st.sampled_from(["RESID", "RESID", "RESID", "VENUE"])),
    lambda i, c, z, kind: Address(f"ad{i}", customerid=c if kind == "RESID" else None, type=kind, zip5=z),
)
KINDS["small_event"] = (
    st.tuples(events, st.one_of(st.integers(1, 5), st.none())),
    lambda i, e, capacity: Event(e, artistid="a1", venueid="v1", capacity=capacity),
)


def location_log():
    """Homes, events and tickets in any order: tickets before their event or their buyer's home, too."""
    return record_log("addresses", home=2, small_event=1, ticket=3)
