"""The samples end to end through the real Apache Kafka broker, started by `make test`."""

import signal
import subprocess
import sys
import time

import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from dataflows import sold_out
from tests import reference
from tests.kafka_support import Cluster
from utopia.config import ConfigError, Settings
from utopia.io.kafka_io import KafkaIO, admin, existing_topics
from utopia.io.topics import create, delete, visible
from utopia.models import Artist, Email, Event, Stream, Ticket
from utopia.tools.generator import Sizes
from utopia.tools.loading import produce

pytestmark = pytest.mark.kafka


@pytest.fixture
def cluster():
    return Cluster()


def test_top_customer_artists_through_kafka(cluster):
    streams = [Stream(f"s{i}", f"c{i % 7}", f"a{(i * i) % 5}") for i in range(400)]
    cluster.produce("streams", streams + [b"not json"])
    done = cluster.run("top_customer_artists")
    assert done.returncode == 0, done.stderr
    # Streams are keyed by their own id, so a customer's streams spread over partitions and their order
    # (hence who wins a tie) is not fixed: check the counts, which do not depend on it.
    latest = dict(cluster.read("top-customer-artists"))
    expected = reference.customer_stream_count(streams)
    assert set(latest) == set(expected)
    for customer, value in latest.items():
        counts = {}
        for s in streams:
            if s.customerid == customer:
                counts[s.artistid] = counts.get(s.artistid, 0) + 1
        assert [t["streams"] for t in value["top"]] == sorted(counts.values(), reverse=True)[:3]
        assert all(counts[t["artistid"]] == t["streams"] for t in value["top"])
    [(_, dead)] = cluster.read("dead-letters")
    assert (dead["dataflow"], dead["value"]) == ("top_customer_artists", "not json")
    assert dead["topic"] == cluster.settings.topics.input("streams")


def test_customer_stream_count_through_kafka_with_two_workers(cluster):
    streams = [Stream(f"s{i}", f"c{i % 11}", "a1") for i in range(1000)]
    cluster.produce("streams", streams)
    done = cluster.run("customer_stream_count", "-w", "2")
    assert done.returncode == 0, done.stderr
    assert dict(cluster.read("customer-stream-count")) == reference.customer_stream_count(streams)
    assert cluster.read("dead-letters") == []


def test_purchase_event_ticket_through_kafka(cluster):
    cluster.produce("tickets", [Ticket(f"t{i}", f"c{i}", "e1", 20.0) for i in range(5)])
    cluster.produce("events", [Event("e1", "a1", "v1", 3, "Mon Mar 01 20:00:00 UTC 2027")])
    done = cluster.run("purchase_event_ticket")
    assert done.returncode == 0, done.stderr
    responses = [value for _, value in cluster.read("ticket-response")]
    # Ticket order across partitions is not defined, so which three win is not fixed: how many is.
    assert sorted((r["status"], r["remaining"]) for r in responses) == [
        ("CONFIRMED", 0),
        ("CONFIRMED", 1),
        ("CONFIRMED", 2),
        ("REJECTED", 0),
        ("REJECTED", 0),
    ]
    assert sorted(r["ticketid"] for r in responses) == [f"t{i}" for i in range(5)]


def test_while_tailing_an_hour_is_written_when_the_wall_clock_closes_it_with_no_stream_coming(cluster):
    # The newest stream, 11:04:50, leaves the watermark 10 s short of closing 10:00-11:00; tailing, it
    # moves on with the wall clock, and the hour is written some 10 s after, with no stream to close it.
    # (All within 5 minutes of the newest: none is late, in whatever order the partitions give them.)
    cluster.produce("artists", [Artist("a1", "Da Vinci", "Pop")])
    cluster.produce(
        "streams",
        [
            Stream("s1", "c1", "a1", "2026-11-25T10:59:51Z"),
            Stream("s2", "c2", "a1", "2026-11-25T10:59:55Z"),
            Stream("s3", "c1", "a2", "2026-11-25T10:59:58Z"),
            Stream("s4", "c3", "a3", "2026-11-25T11:04:50Z"),
        ],
    )
    live = cluster.start("most_streamed_artists", {"UTOPIA_TAIL": "true"})
    try:
        cluster.wait_for("trending-artists", 1, timeout_s=120)
    finally:
        live.send_signal(signal.SIGINT)  # a stop writes no hour (11:00-12:00 is still open)
        _, stderr = live.communicate(timeout=60)
    assert live.returncode == 0, stderr
    assert cluster.read("trending-artists") == [
        (
            "2026-11-25T10:00:00Z",
            {
                "window_start": "2026-11-25T10:00:00Z",
                "window_end": "2026-11-25T11:00:00Z",
                "top": [
                    {"artistid": "a1", "name": "Da Vinci", "streams": 2},
                    {"artistid": "a2", "name": None, "streams": 1},
                ],
            },
        )
    ]


def test_output_the_broker_refuses_fails_the_run_loudly(cluster):
    # Outputs are delivered in the background (no wait per batch without recovery), so a refused
    # delivery must still stop the run, naming the topic and the broker's reason. The topic's size
    # limit is read at start (records too large become dead letters): here it shrinks while the
    # dataflow runs, which no check at start can foresee.
    topic = cluster.settings.topics.output("customer-stream-count")
    live = cluster.start("customer_stream_count", {"UTOPIA_TAIL": "true", "UTOPIA_CHANGELOG_FLUSH_MS": "0"})
    try:
        cluster.produce("streams", [Stream("s-first", "customer-first", "a1")])
        cluster.wait_for("customer-stream-count", 1, timeout_s=120)
        limit = ConfigEntry("max.message.bytes", "40", incremental_operation=AlterConfigOpType.SET)
        resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[limit])
        client = admin(cluster.settings)  # must outlive its futures
        for future in client.incremental_alter_configs([resource]).values():
            future.result(timeout=30)
        cluster.produce("streams", [Stream(f"s{i}", f"customer-{i}", "a1") for i in range(50)])
        # Their deliveries are refused in the background; a later batch reports it, however long that takes.
        deadline, n = time.monotonic() + 120, 0
        while live.poll() is None and time.monotonic() < deadline:
            cluster.produce("streams", [Stream(f"s-later-{n}", f"customer-later-{n}", "a1")])
            n += 1
            time.sleep(0.5)
        _, stderr = live.communicate(timeout=60)
    finally:
        live.kill()
    assert live.returncode != 0
    assert f"not delivered to {topic}: Broker: Message size too large" in stderr


def test_unreachable_broker_is_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "bytewax.run", "dataflows.customer_stream_count"],
        env={"KAFKA_BOOTSTRAP_SERVERS": "localhost:1", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("utopia customer_stream_count: cannot reach Kafka at localhost:1 within 10s")
    assert done.stderr.count("\n") == 1, done.stderr


def test_missing_input_topic_is_one_line(cluster):
    done = subprocess.run(
        [sys.executable, "-m", "bytewax.run", "dataflows.customer_stream_count"],
        env=cluster.env | {"UTOPIA_INPUT_PREFIX": "no-such-prefix-", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("utopia customer_stream_count: input topic(s) no-such-prefix-streams do not exist"), (
        done.stderr
    )


def test_sold_out_through_kafka(cluster):
    cluster.produce("streams", [Stream(f"s{i}", f"c{i % 4}", "a1") for i in range(10)])  # c0, c1: 3 each
    cluster.produce("emails", [Email("m1", "c0", "c0@utopia.io")])
    cluster.produce("tickets", [Ticket(f"t{i}", f"c{i}", "e1", 20.0) for i in range(10)])
    cluster.produce("events", [Event("e1", "a1", "v1", 10, "2027-03-01T20:00:00Z")])
    done = cluster.run("sold_out")
    assert done.returncode == 0, done.stderr
    assert [value for _, value in cluster.read("event-alerts")] == [
        {
            "eventid": "e1",
            "artistid": "a1",
            "venueid": "v1",
            "capacity": 10,
            "sold": 9,
            "remaining": 1,
            "alert": "NEARLY_SOLD_OUT",
        },
        {
            "eventid": "e1",
            "artistid": "a1",
            "venueid": "v1",
            "capacity": 10,
            "sold": 10,
            "remaining": 0,
            "alert": "SOLD_OUT",
        },
    ]
    # Read in timestamp order, the event comes after every stream and the email. c2 and c3 both
    # reach 2 streams; which one first depends on records produced within one millisecond.
    fans = sorted((key, value["email"], value["streams"]) for key, value in cluster.read("event-streamer-alerts"))
    assert fans[:2] == [("c0", "c0@utopia.io", 3), ("c1", None, 3)]
    assert fans[2:] in ([("c2", None, 2)], [("c3", None, 2)])


def test_a_topic_named_twice_is_created_once(cluster):
    # Several steps write the dead letters; librdkafka crashes on a request naming a topic twice.
    topic = cluster.settings.topics.output("twice")
    assert create(cluster.settings, names=[topic, topic], quiet=True) == [topic]
    delete(cluster.settings, [topic, topic])


def test_a_created_topic_is_listed_when_create_returns(cluster):
    """A dataflow started right after must find it: `create` waits for the broker's metadata."""
    topic = cluster.settings.topics.output("listed")
    assert create(cluster.settings, names=[topic], quiet=True) == [topic]
    assert topic in existing_topics(cluster.settings)
    delete(cluster.settings, [topic])
    never = cluster.settings.topics.output("never-created")
    with pytest.raises(ConfigError, match=r".*-never-created were created but are still not listed after 0 s"):
        visible(cluster.settings, [never], timeout_s=0.3)


def test_a_dataflow_lists_each_output_topic_once():
    io = KafkaIO(Settings())
    sold_out.build(io)
    assert sorted(io.outputs) == [
        "kafka-workshop-dead-letters",
        "kafka-workshop-event-alerts",
        "kafka-workshop-event-streamer-alerts",
    ]


def test_records_the_broker_refuses_fail_the_generator_loudly(cluster):
    # Kafka 4 refuses timestamps more than an hour ahead: a data set starting tomorrow is not loaded.
    tomorrow = int(time.time() * 1000) + 86_400_000
    with pytest.raises(ConfigError, match=r"record\(s\) not delivered, the first to .*data-demo-"):
        produce(
            cluster.settings,
            Sizes(customers=2, artists=1, events=1, tickets=1, streams=1, zipcodes=1),
            1,
            start_ms=tomorrow,
        )
