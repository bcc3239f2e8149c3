"""Suggested events by genre: NEW_EVENT and POPULAR_EVENT to the customers whose top genre is the event's."""

from collections import Counter

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows import suggested_events_genre
from tests import reference
from tests.conftest import plain
from tests.strategies import genre_log
from utopia.io.testing import TestingIO, kafka_records, run
from utopia.models import Artist, Event, Stream, Ticket

EVERY_WAY = [(1, 1), (1, 3), (7, 1), (7, 3), (1000, 1), (1000, 3)]  # (batch size, workers)


def run_it(records, workers=1, batch_size=4):
    io = TestingIO(kafka_records(records), batch_size=batch_size)
    run(suggested_events_genre.build(io), workers)
    return io


def suggestions(io):
    """(customer, event, artist, genre, reason) of each alert, sorted: keys are processed in parallel shards."""
    return sorted((k, v.eventid, v.artistid, v.genre, v.reason) for k, v in io.outputs["genre-event-suggestions"])


def every_way(records):
    """The suggestions, the same whatever the batch size and the number of workers."""
    results = [suggestions(run_it(records, workers, batch_size)) for batch_size, workers in EVERY_WAY]
    assert all(result == results[0] for result in results), results
    return results[0]


def streams(customer, artist, count, start=0):
    return [Stream(f"s-{customer}-{artist}-{start + i}", customer, artist) for i in range(count)]


def event(eventid, artist, capacity=100):
    return Event(eventid, artistid=artist, venueid="v1", capacity=capacity)


def tickets(count, eventid="e1", start=0):
    return [Ticket(f"t{eventid}-{start + i}", customerid=f"b{i}", eventid=eventid, price=20.0) for i in range(count)]


POP, JAZZ = Artist("pop", "Popper", "Pop"), Artist("jazz", "Jazzer", "Jazz")


def test_new_events_reach_the_customers_whose_top_genre_is_theirs_at_that_moment():
    records = (
        [POP, JAZZ]
        + streams("c1", "pop", 2)
        + streams("c2", "jazz", 1)
        + [event("e1", "pop")]  # c1 likes Pop now
        + streams("c1", "jazz", 3)  # c1 moves to Jazz (3 against 2)
        + [event("e2", "jazz"), event("e3", "pop")]
    )
    assert every_way(records) == [
        ("c1", "e1", "pop", "Pop", "NEW_EVENT"),
        ("c1", "e2", "jazz", "Jazz", "NEW_EVENT"),
        ("c2", "e2", "jazz", "Jazz", "NEW_EVENT"),
    ]
    value = plain(run_it(records).outputs["genre-event-suggestions"][0][1])
    assert value == {"customerid": "c1", "eventid": "e1", "artistid": "pop", "genre": "Pop", "reason": "NEW_EVENT"}


def test_equal_counts_go_to_the_genre_that_reached_them_first():
    # Pop, Jazz, Jazz, Pop: both at 2, Jazz got there first; then Pop 3 takes the lead.
    records = [POP, JAZZ] + [Stream(f"s{i}", "c1", a) for i, a in enumerate(["pop", "jazz", "jazz", "pop"])]
    records += [event("e1", "jazz"), event("e2", "pop")] + streams("c1", "pop", 1) + [event("e3", "pop")]
    assert every_way(records) == [("c1", "e1", "jazz", "Jazz", "NEW_EVENT"), ("c1", "e3", "pop", "Pop", "NEW_EVENT")]


def test_an_event_before_its_artist_is_new_when_the_genre_comes_in_input_order_with_the_streams():
    # e1 waits before c1's stream, e2 after it: released in that order, so only e2 finds c1 a Pop fan.
    records = [event("e1", "pop")] + streams("c1", "pop", 1) + [event("e2", "pop"), Artist("pop", "Popper", None)]
    assert every_way(records) == []  # a null genre releases nothing
    assert every_way(records + [POP, event("e1", "pop")]) == [("c1", "e2", "pop", "Pop", "NEW_EVENT")]


def test_an_event_in_a_genre_nobody_prefers_tells_nobody():
    records = [POP, JAZZ] + streams("c1", "pop", 3) + streams("c2", "pop", 1) + [event("e1", "jazz")]
    assert every_way(records + tickets(95, "e1")) == []


def test_a_stream_counts_for_the_genre_its_artist_has_when_it_is_applied():
    # c1's two Pop streams stay Pop when the artist turns to Jazz; three more Jazz ones take the lead.
    records = [POP] + streams("c1", "pop", 2) + streams("c2", "pop", 2) + [Artist("pop", "Popper", "Jazz")]
    records += streams("c1", "pop", 3, start=10) + [
        Artist("other", "Other", "Pop"),
        event("e1", "pop"),
        event("e2", "other"),
    ]
    assert every_way(records) == [("c1", "e1", "pop", "Jazz", "NEW_EVENT"), ("c2", "e2", "other", "Pop", "NEW_EVENT")]


def test_an_event_keeps_its_first_artist_and_is_new_only_once():
    records = [POP, JAZZ] + streams("c1", "pop", 1) + streams("c2", "jazz", 1)
    records += [event("e1", "pop"), event("e1", "jazz"), event("e1", "pop", 50)]
    assert every_way(records) == [("c1", "e1", "pop", "Pop", "NEW_EVENT")]


def test_a_popular_event_is_told_once_to_the_customers_of_its_genre_at_the_crossing_ticket():
    # Capacity 10: the 9th ticket crosses 90%. c2 turns to Pop only after it: no POPULAR_EVENT for c2.
    records = (
        [POP, JAZZ]
        + streams("c1", "pop", 1)
        + streams("c2", "jazz", 1)
        + [event("e1", "pop", 10)]
        + tickets(9)
        + streams("c2", "pop", 2)
        + [event("e1", "pop", 100)]
        + tickets(95, start=9)
    )  # a raised capacity: never again
    assert every_way(records) == [("c1", "e1", "pop", "Pop", "NEW_EVENT"), ("c1", "e1", "pop", "Pop", "POPULAR_EVENT")]


def test_a_capacity_change_alone_raises_nothing_and_held_tickets_count_when_their_event_comes():
    records = [POP] + streams("c1", "pop", 1) + [event("e1", "pop", 10)] + tickets(8) + [event("e1", "pop", 8)]
    assert every_way(records) == [("c1", "e1", "pop", "Pop", "NEW_EVENT")]
    # Tickets before the event: counted right after it, at its place (before c2's streams).
    records = tickets(3, "e2") + [POP] + streams("c1", "pop", 1) + [event("e2", "pop", 3)] + streams("c2", "pop", 1)
    assert every_way(records) == [("c1", "e2", "pop", "Pop", "NEW_EVENT"), ("c1", "e2", "pop", "Pop", "POPULAR_EVENT")]


def test_an_event_whose_artist_has_no_genre_when_it_sells_out_tells_nobody_it_is_popular():
    records = streams("c1", "pop", 1) + [event("e1", "pop", 2)] + tickets(2) + [POP]
    assert every_way(records) == [("c1", "e1", "pop", "Pop", "NEW_EVENT")]


def test_records_waiting_for_a_genre_or_an_event_that_never_comes_are_dead_letters_once_each():
    records = (
        [POP]
        + streams("c1", "a7", 2)
        + [event("e7", "a7"), Artist("a8", "Nameless", None)]
        + streams("c2", "a8", 1)
        + [event("e8", "a8"), event("e8", "pop")]
        + tickets(1, "e9")
    )
    for workers in (1, 3):
        io = run_it(records, workers)
        assert suggestions(io) == []
        assert sorted(
            (d.topic, d.offset, msgspec.json.decode(d.value)["id"], d.error) for d in io.values("dead-letters")
        ) == [
            ("data-demo-events", 0, "e7", "waited for the genre of artist a7, which never arrived"),
            ("data-demo-events", 1, "e8", "waited for the genre of artist a8, which never arrived"),
            ("data-demo-events", 2, "e8", "waited for the genre of artist a8, which never arrived"),
            ("data-demo-streams", 0, "s-c1-a7-0", "waited for the genre of artist a7, which never arrived"),
            ("data-demo-streams", 1, "s-c1-a7-1", "waited for the genre of artist a7, which never arrived"),
            ("data-demo-streams", 2, "s-c2-a8-0", "waited for the genre of artist a8, which never arrived"),
            ("data-demo-tickets", 0, "te9-0", "waited for event e9, which never arrived"),
        ], workers


def test_bad_records_and_missing_foreign_keys_are_dead_letters():
    io = run_it(
        [
            ("streams", b'{"id": "s1", "customerid": "c1"}'),
            ("events", b'{"id": "e1"}'),
            ("tickets", b'{"id": "t1", "customerid": "c1"}'),
            ("artists", b"{not json"),
        ]
    )
    assert sorted(d.topic for d in io.values("dead-letters")) == [
        "data-demo-artists",
        "data-demo-events",
        "data-demo-streams",
        "data-demo-tickets",
    ]


def canonical(outputs):
    return Counter((key, repr(sorted(plain(value).items()))) for key, value in outputs)


@settings(max_examples=40)  # each example runs a whole dataflow
@given(log=genre_log(), batch_size=st.sampled_from([1, 4, 1000]))
def test_every_suggestion_exactly_once_as_the_reference_says(log, batch_size, workers):
    io = TestingIO(kafka_records(log), batch_size=batch_size)
    run(suggested_events_genre.build(io), workers)
    good = [r for r in log if not isinstance(r, tuple)]
    alerts, unfinished = reference.genre_event_suggestions(good)
    assert canonical(io.outputs["genre-event-suggestions"]) == canonical(alerts)
    waited = [
        (msgspec.json.decode(d.value)["id"], d.error)
        for d in io.values("dead-letters")
        if d.error.startswith("waited for")
    ]
    assert Counter(waited) == Counter(unfinished)


def test_a_waiting_event_counts_once_in_the_process_though_every_shard_holds_it():
    from utopia.codec import InRecord
    from utopia.rules.genres import GenreShard
    from utopia.steps import Placed
    from utopia.steps.holding import HeldUntilKnown
    from utopia.steps.sharding import SHARD_KEYS

    raw = InRecord("data-demo-events", 0, 0, "e1", b"{}")
    shards = [GenreShard(key) for key in SHARD_KEYS]
    before = HeldUntilKnown.waiting_in_process
    for shard in shards:
        assert shard.apply(Placed(0, 0, (raw, event("e1", "pop")))) == []
    shards[0].apply(Placed(0, 1, (raw, Stream("s1", "c1", "pop"))))
    assert HeldUntilKnown.waiting_in_process == before + 2
    for shard in shards:
        shard.apply(Placed(0, 2, POP))
    assert HeldUntilKnown.waiting_in_process == before
