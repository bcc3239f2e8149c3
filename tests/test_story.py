"""The end of `make demo`: each scenario's sentence, from hand-made outputs and from a real run on files."""

import re

from utopia.cli import dataflow_names, run_on_files
from utopia.config import Topics
from utopia.models import (
    ArtistStreams,
    CustomerStreamCount,
    EventAlert,
    EventStreamerAlert,
    GenreEventSuggestion,
    GlobalTotals,
    MustSeeVenue,
    NamedArtistStreams,
    TicketResponse,
    TopArtists,
    TopCustomerArtists,
    TrendingArtists,
    ZipcodePopularEventAlert,
    ZipcodeTickets,
)
from utopia.tools.generator import Sizes
from utopia.tools.loading import write_dir
from utopia.tools.story import TELLERS, read_outputs, story


def test_customer_stream_count_tells_the_latest_counts_and_the_most_active():
    counts = [
        ("c1", CustomerStreamCount("c1", 5)),
        ("c2", CustomerStreamCount("c2", 999)),
        ("c1", CustomerStreamCount("c1", 1_200)),
        ("c3", CustomerStreamCount("c3", 1_200)),
    ]
    assert TELLERS["customer_stream_count"]({"customer-stream-count": counts}) == (
        "3,399 streams by 3 customers; the most active, c1, streamed 1,200 times."
    )


def test_top_customer_artists_tells_the_most_common_number_one():
    def ranking(customer, *artists):
        return customer, TopCustomerArtists(customer, [ArtistStreams(a, 1) for a in artists])

    rankings = [ranking("c1", "a1"), ranking("c2", "a2", "a1"), ranking("c1", "a2"), ranking("c3", "a3")]
    assert TELLERS["top_customer_artists"]({"top-customer-artists": rankings}) == (
        "3 customers ranked their artists; a2 is the #1 of 2 of them."
    )


def test_purchase_event_ticket_tells_confirmed_rejected_and_events_sold_out():
    responses = [
        (t, TicketResponse(t, e, "c", status, remaining))
        for t, e, status, remaining in [
            ("t1", "e1", "CONFIRMED", 0),
            ("t2", "e1", "REJECTED", 0),
            ("t3", "e2", "CONFIRMED", 4),
        ]
    ]
    assert TELLERS["purchase_event_ticket"]({"ticket-response": responses}) == (
        "2 tickets confirmed, 1 rejected (1 event sold out)."
    )


def test_sold_out_tells_events_nearly_and_fully_sold_out_and_fans_told():
    def alert(event, kind):
        return event, EventAlert(event, "a", "v", 10, 9, 1, kind)

    def fan(customer, event):
        return customer, EventStreamerAlert(customer, None, event, "a", None, None, 3)

    outputs = {
        "event-alerts": [alert("e1", "NEARLY_SOLD_OUT"), alert("e2", "NEARLY_SOLD_OUT"), alert("e1", "SOLD_OUT")],
        "event-streamer-alerts": [fan("c1", "e1"), fan("c2", "e1"), fan("c1", "e3")],
    }
    assert TELLERS["sold_out"](outputs) == (
        "2 events reached 90% of their capacity, 1 sold out; 3 top fans told about 2 new events."
    )


def test_most_streamed_artists_tells_the_top_artist_and_the_last_hour_trending():
    outputs = {
        "top-artists": [
            ("global", TopArtists([NamedArtistStreams("a1", "Old Name", 3)])),
            ("global", TopArtists([NamedArtistStreams("a2", "The Kings", 12_345)])),
        ],
        "trending-artists": [
            (start, TrendingArtists(start, "", [NamedArtistStreams(artist, name, 2)]))
            for start, artist, name in [("2026-11-01T07:00:00Z", "a3", None), ("2026-11-01T06:00:00Z", "a2", "X")]
        ],
    }
    assert TELLERS["most_streamed_artists"](outputs) == (
        "Most streamed: The Kings (12,345 streams); trending in the last hour (2026-11-01T07:00:00Z): a3."
    )
    assert TELLERS["most_streamed_artists"]({"top-artists": outputs["top-artists"]}) == (
        "Most streamed: The Kings (12,345 streams)."
    )


def test_must_see_venue_tells_both_leaders():
    leaders = [
        ("customers", MustSeeVenue("customers", "v2", None, 1_306)),
        ("events", MustSeeVenue("events", "v1", "Wrigley Field", 20)),
        ("events", MustSeeVenue("events", "v1", "Wrigley Field", 21)),
    ]
    assert TELLERS["must_see_venue"]({"must-see-venue": leaders}) == (
        "Venue with most events: Wrigley Field (21); with most ticket holders: v2 (1,306)."
    )


def test_global_totals_tells_the_final_totals():
    totals = [
        ("totals", GlobalTotals(1, 1, 1, 0, 0, "t0")),
        ("totals", GlobalTotals(2_000, 100_000, 300, 20_000, 1, "t1")),
    ]
    assert TELLERS["global_totals"]({"global-totals": totals}) == (
        "2,000 customers, 100,000 streams, 20,000 tickets and 300 events (1 already past)."
    )


def test_suggested_events_genre_tells_suggestions_by_reason():
    suggestions = [
        (c, GenreEventSuggestion(c, "e1", "a1", "rock", reason))
        for c, reason in [("c1", "NEW_EVENT"), ("c2", "NEW_EVENT"), ("c1", "POPULAR_EVENT")]
    ]
    assert TELLERS["suggested_events_genre"]({"genre-event-suggestions": suggestions}) == (
        "3 suggestions sent to 2 customers: 2 new events, 1 popular ones."
    )


def test_suggested_events_location_tells_the_busiest_zip_and_the_alerts():
    outputs = {
        "zipcode-tickets": [
            ("11111", ZipcodeTickets("11111", 7)),
            ("22222", ZipcodeTickets("22222", 1_500)),
            ("11111", ZipcodeTickets("11111", 1_501)),
        ],
        "zipcode-popular-event-alerts": [("c1", ZipcodePopularEventAlert("c1", "11111", "e1", "c2"))],
    }
    assert TELLERS["suggested_events_location"](outputs) == (
        "Busiest zip: 11111 (1,501 tickets); 1 popular-event alert to neighbours."
    )


def test_every_scenario_has_a_sentence_even_with_no_output():
    assert sorted(TELLERS) == dataflow_names()
    for name, teller in TELLERS.items():
        assert teller({}).endswith("."), name


def test_the_story_of_a_real_run_on_files(tmp_path):
    write_dir(tmp_path / "in", Sizes(customers=20, artists=5, events=6, tickets=60, streams=300, zipcodes=3), seed=7)
    for name in dataflow_names():
        run_on_files(name, tmp_path / "in", tmp_path / "out" / name)
    lines = story((name, read_outputs(tmp_path / "out" / name, Topics())) for name in dataflow_names())
    said = dict(line.strip().split(": ", 1) for line in lines)
    assert list(said) == dataflow_names()
    assert said["customer_stream_count"].startswith("300 streams by ")
    assert said["global_totals"].startswith("20 customers, 300 streams, 60 tickets and 6 events (")
    responses = re.match(r"(\d+) tickets? confirmed, (\d+) rejected", said["purchase_event_ticket"])
    confirmed, rejected = map(int, responses.groups())
    assert confirmed + rejected == 60
