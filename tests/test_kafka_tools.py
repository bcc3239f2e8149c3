"""`utopia topics delete` and how output topics are created, on the real local broker."""

import os
import subprocess
import sys

import pytest
from confluent_kafka.admin import ConfigResource

from tests.kafka_support import ROOT, Cluster
from utopia.io.kafka_io import admin
from utopia.io.topics import create

pytestmark = pytest.mark.kafka


def utopia(cluster: Cluster, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "utopia.cli", *args], input=stdin, env=os.environ | cluster.env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_changelog_outputs_are_created_compacted_and_the_others_kept_by_time():
    cluster = Cluster()
    outputs = [t for t in cluster.topics() if t.startswith(cluster.env["UTOPIA_OUTPUT_PREFIX"])]
    resources = [ConfigResource(ConfigResource.Type.TOPIC, topic) for topic in outputs]
    client = admin(cluster.settings)
    described = client.describe_configs(resources)
    policies = {resource.name.removeprefix(cluster.env["UTOPIA_OUTPUT_PREFIX"]):
                future.result(timeout=30)["cleanup.policy"].value for resource, future in described.items()}
    assert policies == {
        "customer-stream-count": "compact", "top-customer-artists": "compact", "top-artists": "compact",
        "customers-by-top-artist": "compact", "must-see-venue": "compact", "global-totals": "compact",
        "zipcode-tickets": "compact",
        "ticket-response": "delete", "trending-artists": "delete", "event-alerts": "delete",
        "event-streamer-alerts": "delete", "genre-event-suggestions": "delete", "zipcode-popular-event-alerts": "delete",
        "dead-letters": "delete",
    }


def test_topics_delete_asks_and_deletes_only_this_projects_topics():
    cluster = Cluster()
    ours = cluster.topics()
    inputs = cluster.settings.topics.all_inputs()
    outputs = [cluster.settings.topics.output(name) for name in (
        "customer-stream-count", "top-customer-artists", "ticket-response", "top-artists", "customers-by-top-artist",
        "trending-artists", "event-alerts", "event-streamer-alerts", "must-see-venue", "genre-event-suggestions",
        "global-totals", "zipcode-tickets", "zipcode-popular-event-alerts", "dead-letters")]
    assert sorted(outputs + inputs) == ours and len(inputs) == 9
    others = [cluster.settings.topics.output("other-team-alerts"), cluster.settings.topics.input("other-feed")]
    create(cluster.settings, names=others, quiet=True)  # another team's, under the same prefixes

    listing = "on localhost:9092:\n  " + "\n  ".join(outputs + inputs) + "\n"
    for answer, stderr in (("n\n", ""), ("", "\n")):  # no, and no one to ask (stdin at its end)
        declined = utopia(cluster, "topics", "delete", stdin=answer)
        assert declined.returncode == 1
        assert declined.stdout == listing + "delete these 23 topics and all their records? [y/N] "
        assert declined.stderr == stderr + "topics: nothing deleted\n"
        assert cluster.topics() == sorted(ours + others)

    outputs_only = utopia(cluster, "topics", "delete", "--outputs-only", "--yes")
    assert (outputs_only.returncode, outputs_only.stderr) == (0, "")
    assert outputs_only.stdout == "on localhost:9092:\n  " + "\n  ".join(outputs) + "\ntopics: 14 deleted\n"
    assert cluster.topics() == sorted(inputs + others)

    agreed = utopia(cluster, "topics", "delete", stdin="y\n")
    assert (agreed.returncode, agreed.stderr) == (0, "")
    assert agreed.stdout.endswith("delete these 9 topics and all their records? [y/N] topics: 9 deleted\n")
    assert cluster.topics() == sorted(others)

    again = utopia(cluster, "topics", "delete", "--yes")
    assert (again.returncode, again.stdout) == (0, "topics: none of this project's topics exist on localhost:9092\n")


def test_make_reset_deletes_the_topics_then_the_recovery_stores_and_live_demo_logs():
    made = subprocess.run(["make", "-n", "reset", "YES=1", "FEED=0"], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    assert made.stdout.splitlines()[-2:] == [".venv/bin/utopia topics delete --yes --outputs-only",
                                             "rm -rf .recovery .live-demo"]
    asks = subprocess.run(["make", "-n", "reset"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert ".venv/bin/utopia topics delete" in asks.stdout and "--yes" not in asks.stdout
