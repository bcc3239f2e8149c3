"""The generated world is consistent, causal, skewed where it should be, and reproducible."""

import itertools
from collections import Counter

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utopia.models import INPUT_RECORDS, Event
from utopia.tools.generator import Sizes, generate, live, live_namespace, timestamp_string

SMALL = Sizes(customers=300, artists=40, events=40, tickets=3000, streams=8000, zipcodes=12)


@pytest.fixture(scope="module")
def world():
    return list(generate(SMALL, seed=7))


def references_resolve(records):
    """Every foreign key names a record seen at an earlier or equal timestamp."""
    seen: dict[str, dict[str, int]] = {topic: {} for topic in INPUT_RECORDS}
    needs = {
        "tickets": [("customerid", "customers"), ("eventid", "events")],
        "streams": [("customerid", "customers"), ("artistid", "artists")],
        "events": [("artistid", "artists"), ("venueid", "venues")],
        "venues": [("addressid", "addresses")],
        "emails": [("customerid", "customers")],
        "phones": [("customerid", "customers")],
    }
    last = 0
    for r in records:
        assert r.timestamp >= last
        last = r.timestamp
        for field, topic in needs.get(r.topic, []):
            ref = getattr(r.value, field)
            assert ref in seen[topic] and seen[topic][ref] <= r.timestamp, (r, field)
        if r.topic == "addresses" and r.value.type == "RESID":
            assert r.value.customerid in seen["customers"]
        seen[r.topic].setdefault(r.key, r.timestamp)
        assert r.key == r.value.id and isinstance(r.value, INPUT_RECORDS[r.topic])
    return True


def test_same_seed_same_data_other_seed_other_data(world):
    assert list(generate(SMALL, seed=7)) == world
    assert list(itertools.islice(generate(SMALL, seed=8), 500)) != world[:500]


def test_timestamps_are_causal_and_references_resolve(world):
    assert references_resolve(world)


def honours(sizes, records):
    """Exactly as many tickets, streams, customers, artists and events as asked for."""
    counts = Counter(r.topic for r in records)
    assert (counts["tickets"], counts["streams"], counts["customers"], counts["artists"]) == (
        sizes.tickets,
        sizes.streams,
        sizes.customers,
        sizes.artists,
    )
    assert len({r.key for r in records if r.topic == "events"}) == sizes.events
    return True


def test_sizes_are_honoured(world):
    assert honours(SMALL, world)


@settings(max_examples=100)
@given(
    st.builds(
        Sizes,
        customers=st.integers(1, 30),
        artists=st.integers(1, 6),
        events=st.integers(1, 6),
        tickets=st.integers(1, 60),
        streams=st.integers(1, 60),
        zipcodes=st.integers(1, 6),
    ),
    st.integers(0, 2**32),
)
def test_any_size_of_at_least_one_makes_a_consistent_world(sizes, seed):
    records = list(generate(sizes, seed))
    assert references_resolve(records) and honours(sizes, records)


def test_more_artists_than_names_share_names():
    sizes = Sizes(customers=1, artists=2500, events=1, tickets=1, streams=1, zipcodes=1)
    records = list(generate(sizes))
    assert references_resolve(records) and honours(sizes, records)
    assert len({r.value.name for r in records if r.topic == "artists"}) == 2400  # every name, some twice


def test_every_value_round_trips_through_its_json_model(world):
    for r in world:
        assert msgspec.json.decode(msgspec.json.encode(r.value), type=INPUT_RECORDS[r.topic]) == r.value


@pytest.mark.parametrize(
    ("epoch_ms", "text"),
    [
        (1803931200000, "2027-03-01 20:00:00.0"),
        (1803931200500, "2027-03-01 20:00:00.5"),
        (1803931200580, "2027-03-01 20:00:00.58"),
        (1814044785676, "2027-06-26 21:19:45.676"),
    ],
)
def test_eventdate_is_a_java_sql_timestamp_string(epoch_ms, text):
    assert timestamp_string(epoch_ms) == text


def test_eventdates_have_every_fraction_length(world):
    fractions = {r.value.eventdate.rpartition(".")[2] for r in world if r.topic == "events"}
    assert "0" in fractions and {len(f) for f in fractions} == {1, 2, 3}


def test_customers_cluster_in_few_zip_codes(world):
    zips = {r.value.zip5 for r in world if r.topic == "addresses" and r.value.type == "RESID"}
    assert 1 < len(zips) <= SMALL.zipcodes


def test_some_small_events_sell_past_capacity(world):
    capacity = {r.key: r.value.capacity for r in world if r.topic == "events"}
    sold = Counter(r.value.eventid for r in world if r.topic == "tickets")
    assert any(capacity[e] <= 60 and sold[e] > capacity[e] for e in capacity)


def test_streams_are_skewed_towards_a_few_artists(world):
    per_artist = Counter(r.value.artistid for r in world if r.topic == "streams")
    top_tenth = sum(n for _, n in per_artist.most_common(SMALL.artists // 10))
    assert top_tenth > 0.4 * SMALL.streams


def test_live_world_is_consistent():
    clock = itertools.count(1_800_000_000_000)
    records = list(itertools.islice(live(seed=3, clock=lambda: next(clock)), 5000))
    assert references_resolve(records)
    assert {r.topic for r in records} >= {"streams", "tickets", "customers", "events"}
    assert all(isinstance(r.value, Event) for r in records if r.topic == "events")


def test_a_live_world_has_ids_of_its_own_and_shares_only_the_venues_records(world):
    clock = itertools.count(1_800_000_000_000)
    feed = list(itertools.islice(live(seed=7, clock=lambda: next(clock)), 5000))
    data_set = {(r.topic, r.key): r.value for r in world}
    shared = {(r.topic, r.key) for r in feed} & set(data_set)
    assert shared and all(data_set[topic, key].id.startswith(("v-", "ad-v-")) for topic, key in shared)
    assert all(r.value == data_set[r.topic, r.key] for r in feed if (r.topic, r.key) in shared)
    assert {r.key.split("-")[1] for r in feed if r.topic != "venues" and not r.key.startswith("ad-v-")} == {
        live_namespace(1_800_000_000_000)[:-1]
    }


def test_each_second_gives_a_live_feed_another_namespace():
    assert live_namespace(0) == "L0-"
    assert live_namespace(1_796_637_000_999) == "Ltpo5zc-"
    assert live_namespace(1_796_637_001_000) == "Ltpo5zd-"


def test_no_two_records_share_a_timestamp(world):
    # So a replay in timestamp order is the generated order, however the topics are partitioned.
    stamps = [r.timestamp for r in world]
    assert all(a < b for a, b in zip(stamps, stamps[1:]))


@pytest.mark.kafka
def test_a_live_feed_stopped_with_sigterm_ends_cleanly_and_says_how_many_it_produced():
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.kafka_support import ROOT, Cluster, read_topic

    cluster = Cluster()
    feed = subprocess.Popen(
        [sys.executable, "-m", "utopia.cli", "generate", "--to", "kafka", "--live", "--rate", "50"],
        env=os.environ | cluster.env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until it is producing
        config = cluster.settings.kafka_config()
        if any(read_topic(config, cluster.settings.topics.input(name)) for name in INPUT_RECORDS):
            break
        time.sleep(0.2)
    feed.send_signal(signal.SIGTERM)
    _, stderr = feed.communicate(timeout=60)
    assert feed.returncode == 0, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("stopped after producing ") and last.endswith(" records"), stderr


def test_the_start_option_takes_a_date_a_time_or_yesterday():
    import argparse
    import time

    from utopia.tools.generator import START_MS
    from utopia.tools.loading import start_time

    hour, day = 3_600_000, 86_400_000
    assert start_time("2026-11-01") == START_MS
    assert start_time("2026-11-01T08:00:00") == start_time("2026-11-01T08:00:00Z") == START_MS + 8 * hour
    assert start_time("2026-11-01T08:00:00+01:00") == START_MS + 7 * hour
    before = int(time.time() * 1000)
    yesterday = start_time("yesterday")
    after = int(time.time() * 1000)
    assert (before // day - 1) * day <= yesterday <= (after // day - 1) * day and yesterday % day == 0
    for wrong in ("soon", "2026-13-01", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="expected a date such as 2026-11-01"):
            start_time(wrong)
