"""`utopia generate` on the real broker: the records of files."""

import json
import os
import subprocess
import sys

import msgspec
import pytest

from tests.kafka_support import ROOT, Cluster, read_messages
from utopia.models import INPUT_RECORDS
from utopia.tools.generator import START_MS

pytestmark = pytest.mark.kafka

SMALL = ("--customers", "20", "--artists", "5", "--events", "6", "--tickets", "60", "--streams", "300",
         "--zipcodes", "3")


def generate(cluster: Cluster, *args: str) -> subprocess.CompletedProcess:
    """`utopia generate` of a small data set, as a user runs it, on the cluster's topics."""
    return subprocess.run([sys.executable, "-m", "utopia.cli", "generate", *args, *SMALL], env=os.environ | cluster.env,
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


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

