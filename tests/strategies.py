"""Hypothesis strategies: small random worlds with collisions on purpose (few ids, many records)."""

from hypothesis import strategies as st

from utopia.models import Email, Event, Stream, Ticket

customers = st.sampled_from([f"c{i}" for i in range(6)])
artists = st.sampled_from([f"a{i}" for i in range(6)])
events = st.sampled_from([f"e{i}" for i in range(4)])

bad_values = st.sampled_from([b"{not json", b"[1, 2]", b'"text"', b'{"customerid": "c1"}', b"\xff\xfe", b'{"id": 7}'])


@st.composite
def stream_log(draw, max_size=120):
    """Streams (ids unique), sprinkled with bad values and tombstones."""
    items = draw(st.lists(st.one_of(
        st.tuples(customers, artists).map(lambda ca: ("stream",) + ca),
        bad_values.map(lambda raw: ("bad", raw)),
        st.just(("tombstone",)),
    ), max_size=max_size))
    out = []
    for i, item in enumerate(items):
        if item[0] == "stream":
            out.append(Stream(f"s{i}", item[1], item[2]))
        elif item[0] == "bad":
            out.append(("streams", item[1]))
        else:
            out.append(("streams", None))
    return out


@st.composite
def ticket_log(draw, max_size=80):
    """Events (re-sent with new capacities, sometimes null) and tickets, in any order."""
    items = draw(st.lists(st.one_of(
        st.tuples(events, st.one_of(st.integers(0, 6), st.none())).map(lambda ec: ("event",) + ec),
        st.tuples(events, customers).map(lambda ec: ("ticket",) + ec),
        st.tuples(events, customers).map(lambda ec: ("ticket",) + ec),
        bad_values.map(lambda raw: ("bad", raw)),
    ), max_size=max_size))
    out = []
    for i, item in enumerate(items):
        if item[0] == "event":
            out.append(Event(item[1], artistid="a1", venueid="v1", capacity=item[2], eventdate="2027-03-01"))
        elif item[0] == "ticket":
            out.append(Ticket(f"t{i}", customerid=item[2], eventid=item[1], price=10.0))
        else:
            out.append(("tickets", item[1]))
    return out


@st.composite
def sold_out_log(draw, max_size=150):
    """Events (re-sent with new capacities; an event keeps its artist), tickets, streams and emails."""
    items = draw(st.lists(st.one_of(
        st.tuples(events, st.one_of(st.integers(0, 12), st.none())).map(lambda ec: ("event",) + ec),
        st.tuples(events, customers).map(lambda ec: ("ticket",) + ec),
        st.tuples(events, customers).map(lambda ec: ("ticket",) + ec),
        st.tuples(customers, artists).map(lambda ca: ("stream",) + ca),
        st.tuples(customers, artists).map(lambda ca: ("stream",) + ca),
        st.tuples(customers, st.sampled_from(["x@a.io", "y@b.io", None])).map(lambda ce: ("email",) + ce),
        bad_values.map(lambda raw: ("bad", raw)),
    ), max_size=max_size))
    out = []
    for i, item in enumerate(items):
        kind = item[0]
        if kind == "event":
            eventid = item[1]
            out.append(Event(eventid, artistid=f"a{int(eventid[1:]) % 3}", venueid="v1", capacity=item[2],
                             eventdate="Mon Mar 01 20:00:00 UTC 2027"))
        elif kind == "ticket":
            out.append(Ticket(f"t{i}", customerid=item[2], eventid=item[1], price=10.0))
        elif kind == "stream":
            out.append(Stream(f"s{i}", item[1], item[2]))
        elif kind == "email":
            out.append(Email(f"m{i}", customerid=item[1], email=item[2]))
        else:
            out.append(("tickets", item[1]))
    return out
