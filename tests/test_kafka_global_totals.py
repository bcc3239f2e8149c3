"""Global totals through the real broker: a 1-worker replay gives file mode's totals, two processes the exact ones,
and while tailing, an event's date passing shows with no record.

Topics have 3 partitions, so with two processes each reads part of every topic: customers, events
and tickets are counted on the process that owns their key, streams where they are read, and only
partial counts reach the one total.
"""

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from tests import reference
from tests.kafka_support import ROOT, Cluster
from utopia.cli import run_on_files
from utopia.models import Customer, Event, Stream, Ticket
from utopia.tools.bench import _wait_listening
from utopia.tools.generator import Sizes, generate, timestamp_string
from utopia.tools.loading import produce, write_dir

pytestmark = pytest.mark.kafka

WORLD = Sizes(customers=300, artists=30, events=40, tickets=3000, streams=12000, zipcodes=6)


def without_as_of(value: dict) -> dict:
    return {k: v for k, v in value.items() if k != "as_of"}


def last_totals(records: list[tuple[str | None, dict]]) -> dict:
    values = [value for key, value in records if key == "totals"]
    assert values, "no global-totals value"
    return values[-1]


def test_a_replay_with_one_worker_gives_the_totals_of_file_mode(tmp_path, monkeypatch):
    cluster = Cluster()
    start_ms = int(time.time() * 1000) - 8 * 3_600_000  # the data set spans 6 hours; none may lie ahead
    produce(cluster.settings, WORLD, seed=11, start_ms=start_ms)
    write_dir(tmp_path / "in", WORLD, seed=11, topics=cluster.settings.topics, start_ms=start_ms)
    done = cluster.run("global_totals")
    assert done.returncode == 0, done.stderr
    for name, value in cluster.env.items():  # the same topic names in file mode
        monkeypatch.setenv(name, value)
    run_on_files("global_totals", tmp_path / "in", tmp_path / "out")
    topic = cluster.settings.topics.output("global-totals")
    lines = [json.loads(line) for line in (tmp_path / "out" / f"{topic}.jsonl").open()]
    from_files = last_totals([(line["key"], line["value"]) for line in lines])
    assert from_files["customers"] == WORLD.customers and from_files["events"] == WORLD.events
    assert without_as_of(last_totals(cluster.read("global-totals"))) == without_as_of(from_files)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_processes_give_the_exact_totals():
    cluster = Cluster()
    start_ms = int(time.time() * 1000) - 8 * 3_600_000  # the data set spans 6 hours; none may lie ahead
    produce(cluster.settings, WORLD, seed=12, start_ms=start_ms)
    world = [g.value for g in generate(WORLD, seed=12, start_ms=start_ms)]
    customer = next(r for r in world if isinstance(r, Customer))
    event = next(r for r in world if isinstance(r, Event))
    # Tickets before their event, one for an event that never comes, a customer re-sent, an event
    # moved into the past, a stream without customer, and a bad record.
    early = [
        Ticket("t-early-1", customer.id, "e-late", 10.0),
        Ticket("t-early-2", customer.id, "e-late", 10.0),
        Ticket("t-lost", customer.id, "e-never", 10.0),
    ]
    events = [
        Event("e-late", event.artistid, event.venueid, 10, "2001-01-01 00:00:00.0"),
        msgspec.structs.replace(event, eventdate="2001-01-01 00:00:00.0"),
    ]
    extra = [customer, Stream("s-anonymous")]
    cluster.produce("tickets", early)
    cluster.produce("events", events)
    cluster.produce("customers", extra[:1])
    cluster.produce("streams", extra[1:] + [b"{not json"])

    ports = free_ports(2)
    addresses = ";".join(f"localhost:{port}" for port in ports)
    flush_often = {"UTOPIA_CHANGELOG_FLUSH_MS": "0"}  # every partial count change travels: the most to add up

    def start(process_id: int) -> subprocess.Popen:
        command = ["-m", "bytewax.run", "dataflows.global_totals", "-i", str(process_id), "-a", addresses]
        return subprocess.Popen(
            [sys.executable, *command],
            env=os.environ | cluster.env | flush_often,
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = start(0)
    _wait_listening(ports[0], first)  # the other connects to it, and timely retries only after a second
    second = start(1)
    for process in (first, second):
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr

    expected = reference.global_totals(world + early + events + extra, datetime.now(UTC))
    assert expected["tickets"] == WORLD.tickets + 2 and expected["customers"] == WORLD.customers
    assert without_as_of(last_totals(cluster.read("global-totals"))) == expected
    assert Counter((key, value["error"].split(":")[0]) for key, value in cluster.read("dead-letters")) == Counter(
        [(None, "not valid JSON"), ("t-lost", "waited for event e-never, which never arrived")]
    )


def test_while_tailing_an_event_that_takes_place_shows_with_no_new_record():
    cluster = Cluster()
    cluster.produce("customers", [Customer("c1")])
    live = cluster.start(
        "global_totals", {"UTOPIA_TAIL": "true", "UTOPIA_MAX_IDLE_MS": "200", "UTOPIA_CHANGELOG_FLUSH_MS": "100"}
    )
    try:
        cluster.wait_for("global-totals", 1, timeout_s=120)  # it runs
        # Far enough ahead that the event is read before it takes place, even on a busy machine.
        soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
        cluster.produce("events", [Event("e1", "a1", "v1", 10, timestamp_string(int(soon.timestamp() * 1000)))])
        values = [value for _, value in cluster.wait_for("global-totals", 3, timeout_s=120)]
    finally:
        live.terminate()
        live.wait(timeout=120)
    assert [without_as_of(value) for value in values] == [
        {"customers": 1, "streams": 0, "events": events, "tickets": 0, "events_occurred": occurred}
        for events, occurred in ((0, 0), (1, 0), (1, 1))
    ]
    assert datetime.fromisoformat(values[2]["as_of"]) >= soon
