"""`utopia generate` on the real broker: the records of files, and a live feed that never meets a data set's ids."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import msgspec
import pytest

from tests.kafka_support import ROOT, Cluster, read_messages
from utopia.models import INPUT_RECORDS
from utopia.tools.generator import START_MS

pytestmark = pytest.mark.kafka

SMALL = (
    "--customers",
    "20",
    "--artists",
    "5",
    "--events",
    "6",
    "--tickets",
    "60",
    "--streams",
    "300",
    "--zipcodes",
    "3",
)


def generate(cluster: Cluster, *args: str) -> subprocess.CompletedProcess:
    """`utopia generate` of a small data set, as a user runs it, on the cluster's topics."""
    return subprocess.run(
        [sys.executable, "-m", "utopia.cli", "generate", *args, *SMALL],
        env=os.environ | cluster.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def on_kafka(cluster: Cluster, name: str) -> list[tuple[int, str, dict]]:
    """(timestamp, key, value) of every record of an input topic."""
    messages = read_messages(cluster.settings.kafka_config(), cluster.settings.topics.input(name))
    return [(m.timestamp()[1], m.key().decode(), msgspec.json.decode(m.value())) for m in messages]


def test_the_same_seed_gives_kafka_and_files_the_same_records(tmp_path):
    cluster = Cluster()
    for target in ("kafka", str(tmp_path)):
        done = generate(cluster, "--to", target, "--seed", "5")
        assert done.returncode == 0, done.stderr
    firsts = []
    for name in INPUT_RECORDS:
        path = tmp_path / f"{cluster.settings.topics.input(name)}.jsonl"
        in_file = [(line["timestamp"], line["key"], line["value"]) for line in map(json.loads, path.open())]
        assert in_file and sorted(on_kafka(cluster, name)) == sorted(in_file), name
        firsts.append(in_file[0][0])
    assert START_MS <= min(firsts) < START_MS + 60_000  # the one default start, 2026-11-01, for both


def test_a_live_feed_after_a_data_set_never_sends_its_ids_with_other_fields():
    cluster = Cluster()
    done = generate(cluster, "--to", "kafka")
    assert done.returncode == 0, done.stderr
    started_ms = int(time.time() * 1000)
    feed = subprocess.Popen(
        [sys.executable, "-m", "utopia.cli", "generate", "--to", "kafka", "--live", "--rate", "300"],
        env=os.environ | cluster.env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # until the feed has sent events and tickets to them
            fed = [len([r for r in on_kafka(cluster, name) if r[0] >= started_ms]) for name in ("events", "tickets")]
            if fed[0] >= 10 and fed[1] >= 5:
                break
            time.sleep(1)
        feed.send_signal(signal.SIGTERM)
        _, stderr = feed.communicate(timeout=60)
    finally:
        feed.kill()
    assert feed.returncode == 0, stderr
    records = {name: on_kafka(cluster, name) for name in INPUT_RECORDS}
    data_set = {(name, key): value for name, rs in records.items() for at, key, value in rs if at < started_ms}
    fed = [(name, key, value) for name, rs in records.items() for at, key, value in rs if at >= started_ms]
    assert sum(name == "events" for name, _, _ in fed) >= 10
    # A feed record's id is the data set's only for the venues, which are the same records.
    assert all(data_set.get((name, key), value) == value for name, key, value in fed)
    assert {name for name, key, _ in fed if (name, key) in data_set} == {"venues", "addresses"}
    # Every event keeps its artist and venue (sold_out warned of events re-sent with another artist).
    places = defaultdict(set)
    for _, _, event in records["events"]:
        places[event["id"]].add((event["artistid"], event["venueid"]))
    assert all(len(where) == 1 for where in places.values())
    # The feed's tickets are for the feed's events.
    fed_events = {key for name, key, _ in fed if name == "events"}
    assert {ticket["eventid"] for name, _, ticket in fed if name == "tickets"} <= fed_events
