"""`utopia tail`, `utopia topics delete` and how output topics are created, on the real local broker."""

import os
import queue
import signal
import subprocess
import sys
import threading

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource

from tests.kafka_support import ROOT, Cluster
from tests.makefile import planned
from utopia.io.kafka_io import admin
from utopia.io.topics import create
from utopia.models import CHANGELOGS, OUTPUT_RECORDS

pytestmark = pytest.mark.kafka


def utopia(cluster: Cluster, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "utopia.cli", *args],
        input=stdin,
        env=os.environ | cluster.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write(cluster: Cluster, output: str, records: list[tuple[int, bytes | None, bytes | None, int]]) -> str:
    """(partition, key, value, timestamp) records to an output topic, in this order; returns the topic."""
    topic = cluster.settings.topics.output(output)
    producer = Producer(cluster.settings.kafka_config())
    for partition, key, value, timestamp in records:
        producer.produce(topic, value, key, partition=partition, timestamp=timestamp)
    assert producer.flush(30) == 0
    return topic


@pytest.fixture(scope="module")
def counts():
    """A cluster whose customer-stream-count holds c1's two values in partition 0 and c2's in partition 1."""
    cluster = Cluster()
    topic = write(
        cluster,
        "customer-stream-count",
        [
            (0, b"c1", b'{"customerid":"c1","streams":1}', 1000),
            (1, b"c2", b'{"customerid":"c2","streams":5}', 3000),
            (0, b"c1", b'{"customerid":"c1","streams":2}', 2000),
        ],
    )
    return cluster, topic


def lines(topic: str, *records: tuple[int, int, int, str, str]) -> list[str]:
    return [
        f'{{"topic":"{topic}","partition":{p},"offset":{o},"timestamp":{t},"key":{k},"value":{v}}}'
        for p, o, t, k, v in records
    ]


C1_1 = (0, 0, 1000, '"c1"', '{"customerid":"c1","streams":1}')
C1_2 = (0, 1, 2000, '"c1"', '{"customerid":"c1","streams":2}')
C2_5 = (1, 0, 3000, '"c2"', '{"customerid":"c2","streams":5}')


def in_partitions(text: str) -> list[str]:
    """The lines sorted by partition, keeping their order within each (the order across partitions is not fixed)."""
    return sorted(text.splitlines(), key=lambda line: int(line.split('"partition":')[1].split(",")[0]))


def test_tail_prints_every_record_as_a_json_line_from_the_beginning(counts):
    cluster, topic = counts
    done = utopia(cluster, "tail", "customer-stream-count", "--from-beginning")
    assert (done.returncode, done.stderr) == (0, "")
    assert in_partitions(done.stdout) == lines(topic, C1_1, C1_2, C2_5)


def test_tail_prints_the_last_records_of_each_partition_by_default(counts):
    cluster, topic = counts
    done = utopia(cluster, "tail", "customer-stream-count", "--last", "1")
    assert (done.returncode, done.stderr) == (0, "")
    assert in_partitions(done.stdout) == lines(topic, C1_2, C2_5)
    done = utopia(cluster, "tail", "customer-stream-count")  # 10 a partition: all there is here
    assert in_partitions(done.stdout) == lines(topic, C1_1, C1_2, C2_5)


def test_tail_prints_only_the_records_of_a_key(counts):
    cluster, topic = counts
    done = utopia(cluster, "tail", "customer-stream-count", "--from-beginning", "--key", "c1")
    assert (done.returncode, done.stdout, done.stderr) == (0, "\n".join(lines(topic, C1_1, C1_2)) + "\n", "")


def test_tail_keeps_bytes_that_are_not_utf8_as_base64_and_text_that_is_not_json_as_text():
    cluster = Cluster()
    topic = write(cluster, "dead-letters", [(0, b"\xff", b"not json", 5), (0, None, b"\xfe", 6), (0, b"k", None, 7)])
    done = utopia(cluster, "tail", "dead-letters")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        f'{{"topic":"{topic}","partition":0,"offset":0,"timestamp":5,"key":"/w==","value":"not json",'
        '"key_encoding":"base64"}',
        f'{{"topic":"{topic}","partition":0,"offset":1,"timestamp":6,"key":null,"value":"/g==","encoding":"base64"}}',
        f'{{"topic":"{topic}","partition":0,"offset":2,"timestamp":7,"key":"k","value":null}}',
    ]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_tail_follows_new_records_until_stopped_and_ends_with_rc_0(stop):
    cluster = Cluster()
    topic = write(cluster, "customer-stream-count", [(1, b"c2", b'{"customerid":"c2","streams":5}', 3000)])
    follow = subprocess.Popen(
        [sys.executable, "-m", "utopia.cli", "tail", "customer-stream-count", "--follow"],
        env=os.environ | cluster.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    printed: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [printed.put(line) for line in follow.stdout], daemon=True).start()
    try:
        assert printed.get(timeout=60) == lines(topic, C2_5)[0] + "\n"
        write(cluster, "customer-stream-count", [(1, b"c2", b'{"customerid":"c2","streams":6}', 4000)])
        c2_6 = (1, 1, 4000, '"c2"', '{"customerid":"c2","streams":6}')
        assert printed.get(timeout=60) == lines(topic, c2_6)[0] + "\n"
        follow.send_signal(stop)
        assert follow.wait(timeout=60) == 0
        assert follow.stderr.read() == ""
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()


def test_tail_of_an_unknown_output_names_the_known_ones_in_one_line(counts):
    cluster, _ = counts
    done = utopia(cluster, "tail", "event-alert")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "utopia: unknown output 'event-alert'; known: customer-stream-count, top-customer-artists, ticket-response, "
        "top-artists, customers-by-top-artist, trending-artists, event-alerts, event-streamer-alerts, "
        "must-see-venue, genre-event-suggestions, global-totals, zipcode-tickets, zipcode-popular-event-alerts, "
        "dead-letters\n"
    )


def test_tail_of_an_output_topic_not_there_says_how_to_make_it(counts):
    cluster, _ = counts
    cluster.env["UTOPIA_OUTPUT_SUFFIX"] = "-nowhere"
    try:
        done = utopia(cluster, "tail", "event-alerts")
    finally:
        del cluster.env["UTOPIA_OUTPUT_SUFFIX"]
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"utopia: output topic {cluster.env['UTOPIA_OUTPUT_PREFIX']}event-alerts-nowhere does not "
        "exist on localhost:9092: create it with `utopia topics create` and run its dataflow\n"
    )


def test_changelog_outputs_are_created_compacted_and_the_others_kept_by_time():
    cluster = Cluster()
    outputs = [t for t in cluster.topics() if t.startswith(cluster.env["UTOPIA_OUTPUT_PREFIX"])]
    resources = [ConfigResource(ConfigResource.Type.TOPIC, topic) for topic in outputs]
    client = admin(cluster.settings)
    described = client.describe_configs(resources)
    policies = {
        resource.name.removeprefix(cluster.env["UTOPIA_OUTPUT_PREFIX"]): future.result(timeout=30)[
            "cleanup.policy"
        ].value
        for resource, future in described.items()
    }
    assert policies == {
        "customer-stream-count": "compact",
        "top-customer-artists": "compact",
        "top-artists": "compact",
        "customers-by-top-artist": "compact",
        "must-see-venue": "compact",
        "global-totals": "compact",
        "zipcode-tickets": "compact",
        "ticket-response": "delete",
        "trending-artists": "delete",
        "event-alerts": "delete",
        "event-streamer-alerts": "delete",
        "genre-event-suggestions": "delete",
        "zipcode-popular-event-alerts": "delete",
        "dead-letters": "delete",
    }


def test_the_readme_names_the_changelogs_that_are_compacted():
    readme = (ROOT / "README.md").read_text()
    paragraph = readme.split("The changelogs (", 1)[1].split(")", 1)[0]
    assert paragraph.replace("\n", " ").split(", ") == [f"`{name}`" for name in OUTPUT_RECORDS if name in CHANGELOGS]


def test_topics_delete_asks_and_deletes_only_this_projects_topics():
    cluster = Cluster()
    ours = cluster.topics()
    inputs = cluster.settings.topics.all_inputs()
    outputs = [
        cluster.settings.topics.output(name)
        for name in (
            "customer-stream-count",
            "top-customer-artists",
            "ticket-response",
            "top-artists",
            "customers-by-top-artist",
            "trending-artists",
            "event-alerts",
            "event-streamer-alerts",
            "must-see-venue",
            "genre-event-suggestions",
            "global-totals",
            "zipcode-tickets",
            "zipcode-popular-event-alerts",
            "dead-letters",
        )
    ]
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
    assert planned("reset", "YES=1", "FEED=0").splitlines()[-2:] == [
        ".venv/bin/utopia topics delete --yes --outputs-only",
        "rm -rf .recovery .live-demo",
    ]
    asks = planned("reset")
    assert ".venv/bin/utopia topics delete" in asks and "--yes" not in asks
