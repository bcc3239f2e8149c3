"""A replay from the earliest offsets through the real broker gives, with 1 worker, what file mode gives.

Each worker releases the records of all the partitions it reads in timestamp order
(docs/outputs.md#ordering), so the events of a generated data set no longer overtake the streams
and tickets that came before them.
"""

import json
import os
import subprocess
import sys
import time
from collections import Counter

import pytest
from confluent_kafka import Producer

from tests.kafka_support import Cluster, read_topic
from tests.test_kafka_global_totals import without_as_of
from tests.test_kafka_guarantees import free_ports
from utopia.cli import run_on_files
from utopia.config import Settings
from utopia.models import CHANGELOGS, Event, Ticket
from utopia.tools.generator import Sizes
from utopia.tools.loading import produce, write_dir

pytestmark = pytest.mark.kafka

WORLD = Sizes(customers=300, artists=30, events=40, tickets=3000, streams=12000, zipcodes=6)


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    """One generated data set, on the broker (3 partitions a topic) and as topic files, with the same timestamps."""
    cluster = Cluster()
    start_ms = int(time.time() * 1000) - 8 * 3_600_000  # the data set spans 6 hours; none may lie ahead
    produce(cluster.settings, WORLD, seed=11, start_ms=start_ms)
    files = tmp_path_factory.mktemp("replay")
    write_dir(files, WORLD, seed=11, topics=cluster.settings.topics, start_ms=start_ms)
    return cluster, files


def comparable(name: str, records: list[tuple[str | None, dict]]):
    if name in CHANGELOGS:
        return dict(records)
    return Counter((key, json.dumps(value, sort_keys=True)) for key, value in records)


@pytest.mark.parametrize(
    ("dataflow", "outputs"),
    [
        ("sold_out", ["event-alerts", "event-streamer-alerts"]),
        ("most_streamed_artists", ["top-artists", "customers-by-top-artist", "trending-artists"]),
        ("purchase_event_ticket", ["ticket-response"]),
        ("must_see_venue", ["must-see-venue"]),
        ("suggested_events_genre", ["genre-event-suggestions"]),
        ("suggested_events_location", ["zipcode-tickets", "zipcode-popular-event-alerts"]),
    ],
)
def test_a_replay_gives_the_outputs_of_file_mode(replay, tmp_path, monkeypatch, dataflow, outputs):
    cluster, files = replay
    done = cluster.run(dataflow)
    assert done.returncode == 0, done.stderr
    for name, value in cluster.env.items():  # the same topic names in file mode
        monkeypatch.setenv(name, value)
    run_on_files(dataflow, files, tmp_path)
    for output in outputs:
        topic = cluster.settings.topics.output(output)
        from_files = [(line["key"], line["value"]) for line in map(json.loads, (tmp_path / f"{topic}.jsonl").open())]
        from_kafka = cluster.read(output)
        assert from_files, f"{output}: the data set gives nothing to compare"
        assert comparable(output, from_kafka) == comparable(output, from_files), output


EVERY_OUTPUT = [
    ("customer_stream_count", ["customer-stream-count"]),
    ("global_totals", ["global-totals"]),
    ("most_streamed_artists", ["top-artists", "customers-by-top-artist", "trending-artists"]),
    ("must_see_venue", ["must-see-venue"]),
    ("purchase_event_ticket", ["ticket-response"]),
    ("sold_out", ["event-alerts", "event-streamer-alerts"]),
    ("suggested_events_genre", ["genre-event-suggestions"]),
    ("suggested_events_location", ["zipcode-tickets", "zipcode-popular-event-alerts"]),
    ("top_customer_artists", ["top-customer-artists"]),
]


def two_processes(cluster: Cluster, dataflow: str, env: dict[str, str]) -> None:
    """`dataflow` on 2 processes of 2 workers each, until its input ends."""
    addresses = ";".join(f"localhost:{port}" for port in free_ports(2))
    processes = [cluster.start(dataflow, env, ("-w", "2", "-i", str(i), "-a", addresses)) for i in range(2)]
    for process in processes:
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors


@pytest.mark.parametrize(("dataflow", "outputs"), EVERY_OUTPUT)
def test_in_global_order_two_processes_give_the_outputs_of_file_mode(replay, tmp_path, monkeypatch, dataflow, outputs):
    # Tie orders included: a changelog's last value per key holds its whole ranking, in order.
    cluster, files = replay
    prefix = f"{cluster.env['UTOPIA_OUTPUT_PREFIX']}global-{dataflow}-"
    two_processes(
        cluster, dataflow, {"UTOPIA_ORDER": "global", "UTOPIA_OUTPUT_PREFIX": prefix, "UTOPIA_CREATE_TOPICS": "true"}
    )
    for name, value in cluster.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("UTOPIA_OUTPUT_PREFIX", prefix)
    run_on_files(dataflow, files, tmp_path)
    global_run = Settings.from_env(os.environ | cluster.env | {"UTOPIA_OUTPUT_PREFIX": prefix})
    for output in outputs:
        topic = global_run.topics.output(output)
        from_files = [(line["key"], line["value"]) for line in map(json.loads, (tmp_path / f"{topic}.jsonl").open())]
        from_kafka = read_topic(global_run.kafka_config(), topic)
        assert from_files, f"{output}: the data set gives nothing to compare"
        assert comparable(output, without_clock(from_kafka)) == comparable(output, without_clock(from_files)), output


def without_clock(records: list[tuple[str | None, dict]]) -> list[tuple[str | None, dict]]:
    """The records without global-totals' `as_of`: when each run read its clock."""
    return [(key, without_as_of(value)) for key, value in records]


def test_a_file_out_of_timestamp_order_is_read_as_kafka_reads_its_partition(tmp_path, monkeypatch):
    # t2 is older than the event and than t1 before it: both modes keep it after t1, as if it had t1's
    # timestamp, so t1 gets the one seat (read by timestamp, t2 would have come first and got it).
    cluster = Cluster()
    at = int(time.time() * 1000) - 3_600_000
    event = {"id": "e1", "capacity": 1, "eventdate": "2099-03-01T20:00:00Z"}
    inputs = {
        "events": [("e1", event, at + 2)],
        "tickets": [
            ("t1", {"id": "t1", "customerid": "c1", "eventid": "e1"}, at + 5),
            ("t2", {"id": "t2", "customerid": "c2", "eventid": "e1"}, at + 1),
        ],
    }
    producer = Producer(cluster.settings.kafka_config())
    (tmp_path / "in").mkdir()
    for topic, records in inputs.items():
        for key, value, timestamp in records:  # one partition, offsets in line order
            producer.produce(cluster.settings.topics.input(topic), json.dumps(value), key, 0, timestamp=timestamp)
        lines = [json.dumps({"key": key, "value": value, "timestamp": ts}) + "\n" for key, value, ts in records]
        (tmp_path / "in" / f"{cluster.settings.topics.input(topic)}.jsonl").write_text("".join(lines))
    producer.flush()
    done = cluster.run("purchase_event_ticket")
    assert done.returncode == 0, done.stderr
    for name, value in cluster.env.items():
        monkeypatch.setenv(name, value)
    run_on_files("purchase_event_ticket", tmp_path / "in", tmp_path / "out")
    out = tmp_path / "out" / f"{cluster.settings.topics.output('ticket-response')}.jsonl"
    from_files = [(line["key"], line["value"]) for line in map(json.loads, out.open())]
    assert (
        cluster.read("ticket-response")
        == from_files
        == [
            ("t1", {"ticketid": "t1", "eventid": "e1", "customerid": "c1", "status": "CONFIRMED", "remaining": 0}),
            ("t2", {"ticketid": "t2", "eventid": "e1", "customerid": "c2", "status": "REJECTED", "remaining": 0}),
        ]
    )


@pytest.mark.parametrize("order", ["partition", "global"])
def test_a_quiet_topic_does_not_stall_a_live_dataflow(order):
    # Tailing, with no email and no stream at all: those partitions hold the others back for at
    # most UTOPIA_MAX_IDLE_MS, then the tickets and the event go on; in global order too, on 2
    # workers of which one reads nothing.
    cluster = Cluster()
    cluster.produce("events", [Event("e1", "a1", "v1", 2, "2027-06-26 21:19:45.676")])
    cluster.produce("tickets", [Ticket(f"t{i}", f"c{i}", "e1", 20.0) for i in range(2)])
    settings = {"UTOPIA_TAIL": "true", "UTOPIA_MAX_IDLE_MS": "500", "UTOPIA_ORDER": order}
    live = cluster.start("sold_out", settings, ("-w", "2"))
    try:
        alerts = cluster.wait_for("event-alerts", 2, timeout_s=120)
    finally:
        live.terminate()
        live.wait(timeout=120)
    assert [value["alert"] for _, value in alerts] == ["NEARLY_SOLD_OUT", "SOLD_OUT"]


def test_a_resume_from_recovery_continues_where_it_stopped(tmp_path):
    # Half the records, a run to their end with a recovery store, the other half, a resumed run:
    # every alert once, as one run over all of them gives.
    cluster = Cluster()
    events = [Event(f"e{n}", "a1", "v1", 4, "2027-06-26 21:19:45.676") for n in range(3)]
    tickets = [Ticket(f"t{i}", f"c{i}", f"e{i % 3}", 20.0) for i in range(12)]
    recovery = tmp_path / "recovery"
    recovery.mkdir()
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(recovery), "1"], check=True)
    flags = ("-r", str(recovery), "-s", "1", "-b", "0")
    cluster.produce("events", events)
    cluster.produce("tickets", tickets[:6])
    first = cluster.run("sold_out", *flags)
    assert first.returncode == 0, first.stderr
    assert cluster.read("event-alerts") == []
    cluster.produce("tickets", tickets[6:])
    second = cluster.run("sold_out", *flags)
    assert second.returncode == 0, second.stderr
    assert sorted((key, value["alert"], value["sold"]) for key, value in cluster.read("event-alerts")) == [
        (f"e{n}", alert, 4) for n in range(3) for alert in ("NEARLY_SOLD_OUT", "SOLD_OUT")
    ]


def test_with_two_workers_every_ticket_counts_once_in_a_zip(replay, tmp_path, monkeypatch):
    # Two lanes: an event, its tickets and their buyers' homes may be read by different workers, which
    # do not wait for each other (docs/outputs.md#ordering): a ticket may count before or after its
    # buyer's move. Every ticket still counts exactly once.
    cluster, files = replay
    done = cluster.run("suggested_events_location", "-w", "2")
    assert done.returncode == 0, done.stderr
    for name, value in cluster.env.items():
        monkeypatch.setenv(name, value)
    run_on_files("suggested_events_location", files, tmp_path)
    topic = cluster.settings.topics.output("zipcode-tickets")
    from_files = dict((line["key"], line["value"]) for line in map(json.loads, (tmp_path / f"{topic}.jsonl").open()))
    from_kafka = dict(cluster.read("zipcode-tickets"))
    assert from_kafka.keys() == from_files.keys()
    assert sum(value["tickets"] for value in from_kafka.values()) == sum(v["tickets"] for v in from_files.values())
