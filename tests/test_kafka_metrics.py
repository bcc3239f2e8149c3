"""A running dataflow's metrics, scraped from Bytewax's endpoint while it runs (real broker)."""

import re
import socket
import time
import urllib.request

import pytest

from tests.kafka_support import Cluster
from utopia.models import Event, Stream, Ticket

pytestmark = pytest.mark.kafka


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://localhost:{port}/metrics", timeout=5).read().decode()
    return {name: float(value) for name, value in re.findall(r"^(utopia_\S+) (\S+)$", text, re.MULTILINE)}


def test_records_read_written_dead_lettered_and_waiting_are_counted_while_it_runs():
    cluster = Cluster()
    cluster.produce("streams", [Stream(f"s{i}", f"c{i % 3}", "a1") for i in range(30)] + [b"{not json"])
    cluster.produce("tickets", [Ticket("t1", "c1", "e-never"), Ticket("t2", "c2", "e-never")])  # they wait
    cluster.produce("events", [Event("e1", "a1", "v1", 1)])
    cluster.produce("tickets", [Ticket("t3", "c0", "e1")])  # sells it out: two event alerts
    port = free_port()
    live = cluster.start(
        "sold_out",
        {"UTOPIA_TAIL": "true", "BYTEWAX_DATAFLOW_API_ENABLED": "true", "BYTEWAX_DATAFLOW_API_PORT": str(port)},
    )
    try:
        cluster.wait_for("dead-letters", 1, timeout_s=120)
        deadline = time.monotonic() + 120
        while True:
            try:
                metrics = scrape(port)
                if metrics.get('utopia_records_read_total{dataflow="sold_out"}') == 35:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "no metrics within 120 s"
            time.sleep(0.5)
    finally:
        live.terminate()
        live.wait(timeout=120)
    assert metrics['utopia_dead_letters_total{dataflow="sold_out"}'] == 1
    assert metrics["utopia_records_waiting"] == 2
    assert metrics['utopia_records_written_total{dataflow="sold_out",output="event-alerts"}'] == 2
