"""Running it like production (real broker): clear one-line errors, missing outputs, Ctrl-C, a lost peer process."""

import signal
import socket

import pytest

from tests.kafka_support import Cluster
from utopia.io.topics import delete
from utopia.models import Stream

pytestmark = pytest.mark.kafka

STREAMS = [Stream(f"s{i}", f"c{i % 3}", "a1") for i in range(30)]


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_a_missing_output_topic_is_named_with_the_command_that_creates_it():
    cluster = Cluster()
    counts = cluster.settings.topics.output("customer-stream-count")
    delete(cluster.settings, [counts])  # returns once the broker's metadata has it gone too
    done = cluster.run("customer_stream_count")
    assert done.returncode == 1
    assert one_line(done.stderr) == (
        f"utopia customer_stream_count: output topic(s) {counts} do not exist on localhost:9092: create them with "
        "`utopia topics create`, or set UTOPIA_CREATE_TOPICS=true to let the dataflow do it"
    )
    cluster.produce("streams", STREAMS)
    done = cluster.run("customer_stream_count", env={"UTOPIA_CREATE_TOPICS": "true"})
    assert done.returncode == 0, done.stderr
    counted = {key: value["streams"] for key, value in cluster.read("customer-stream-count")}
    assert counted == {"c0": 10, "c1": 10, "c2": 10}


@pytest.mark.parametrize(
    ("protocol", "extra"),
    [
        ("SSL", {}),
        ("SASL_SSL", {"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}),
        ("SASL_PLAINTEXT", {"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}),
    ],
)
def test_a_security_protocol_the_broker_does_not_speak_is_named(protocol, extra):
    cluster = Cluster()
    done = cluster.run("customer_stream_count", env={"KAFKA_SECURITY_PROTOCOL": protocol} | extra)
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith("utopia customer_stream_count: ") and f"KAFKA_SECURITY_PROTOCOL={protocol}" in line, line
    assert "check KAFKA_SECURITY_PROTOCOL" in line, line


def test_ctrl_c_writes_what_is_pending_and_says_what_was_done():
    cluster = Cluster()
    cluster.produce("streams", STREAMS + [b"{not json"])
    # Changelog updates wait up to 10 minutes for newer ones: only a graceful stop writes them.
    live = cluster.start("customer_stream_count", {"UTOPIA_TAIL": "true", "UTOPIA_CHANGELOG_FLUSH_MS": "600000"})
    try:
        cluster.wait_for("dead-letters", 1, timeout_s=120)  # the records have been read
        live.send_signal(signal.SIGINT)
        _, stderr = live.communicate(timeout=120)
    finally:
        live.kill()
    assert live.returncode == 0, stderr
    assert "Traceback" not in stderr and "PanicException" not in stderr, stderr
    assert "SIGINT received: the inputs stop" in stderr
    assert "stopped after reading 31 record(s) (1 dead letters)" in stderr
    counted = {key: value["streams"] for key, value in cluster.read("customer-stream-count")}
    assert counted == {"c0": 10, "c1": 10, "c2": 10}
    assert len(cluster.read("dead-letters")) == 1  # nothing pretended the input had ended


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_a_lost_peer_process_is_one_line_saying_what_to_do():
    cluster = Cluster()
    cluster.produce("streams", STREAMS)
    addresses = f"localhost:{free_port()};localhost:{free_port()}"
    tail = {"UTOPIA_TAIL": "true"}
    first = cluster.start("customer_stream_count", tail, ("-i", "0", "-a", addresses))
    second = cluster.start("customer_stream_count", tail, ("-i", "1", "-a", addresses))
    try:
        cluster.wait_for("customer-stream-count", 3, timeout_s=60)  # both run
        second.kill()
        _, stderr = first.communicate(timeout=60)
    finally:
        first.kill()
        second.kill()
    assert first.returncode != 0
    assert (
        "utopia customer_stream_count: process 1 of 2 lost (this is process 0); restart all 2 "
        "(with -r to resume from the last snapshot)"
    ) in stderr, stderr
    assert "Traceback" not in stderr, stderr
