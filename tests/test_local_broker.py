"""The local broker only when it is the cluster in use, on the port the clients use (utopia/local_broker.py)."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.makefile import planned
from utopia.config import ConfigError, Settings
from utopia.local_broker import bootstrap_servers, local_port

ROOT = Path(__file__).resolve().parent.parent
CLOUD = "pkc-123.us-east-1.aws.confluent.cloud:9092"


@pytest.mark.parametrize(
    ("env", "servers", "port"),
    [
        ({}, "localhost:9092", 9092),
        ({"KAFKA_PORT": "19092"}, "localhost:19092", 19092),
        ({"KAFKA_BOOTSTRAP_SERVERS": "localhost:19092"}, "localhost:19092", 19092),
        (
            {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092,localhost:19092", "KAFKA_PORT": "19092"},
            "127.0.0.1:19092,localhost:19092",
            19092,
        ),
        ({"KAFKA_BOOTSTRAP_SERVERS": " "}, "localhost:9092", 9092),
        ({"KAFKA_BOOTSTRAP_SERVERS": CLOUD}, CLOUD, None),
        ({"KAFKA_BOOTSTRAP_SERVERS": CLOUD, "KAFKA_PORT": "19092"}, CLOUD, None),  # KAFKA_PORT is the local broker's
        ({"KAFKA_BOOTSTRAP_SERVERS": "localhost:9092,broker2:9092"}, "localhost:9092,broker2:9092", None),
        ({"KAFKA_BOOTSTRAP_SERVERS": "localhost:9092,localhost:9094"}, "localhost:9092,localhost:9094", None),
    ],
)
def test_the_clients_servers_and_whether_they_are_the_local_broker(env, servers, port):
    assert bootstrap_servers(env) == servers
    assert local_port(servers) == port
    assert Settings.from_env(env).bootstrap_servers == servers


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"KAFKA_PORT": "x"},
            "KAFKA_PORT='x' is not a port number from 1 to 65534 (the broker's controller takes the next one)",
        ),
        ({"KAFKA_PORT": "65535"}, "KAFKA_PORT='65535' is not a port number"),
        (
            {"KAFKA_PORT": "9093", "KAFKA_BOOTSTRAP_SERVERS": "localhost:9092"},
            "KAFKA_PORT=9093 and KAFKA_BOOTSTRAP_SERVERS='localhost:9092' name different ports of the local broker: "
            "set only one of them",
        ),
    ],
)
def test_a_bad_or_contradicting_port_is_one_line_naming_the_variables(env, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)


def broker_sh(command: str, env: dict[str, str], home) -> subprocess.CompletedProcess:
    """`kafka/broker.sh` on a Kafka home of the test's own, where nothing was fetched."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    return subprocess.run(
        ["bash", "kafka/broker.sh", command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean | env | {"KAFKA_HOME_DIR": str(home)},
    )


def test_another_cluster_starts_no_local_broker_and_fetches_nothing(tmp_path):
    up = broker_sh("up", {"KAFKA_BOOTSTRAP_SERVERS": CLOUD}, tmp_path)
    assert (up.returncode, up.stdout, up.stderr) == (
        0,
        f"KAFKA_BOOTSTRAP_SERVERS={CLOUD} is not the local broker: none started\n",
        "",
    )
    assert list(tmp_path.iterdir()) == []  # no jars fetched, no data formatted, no pid file
    status = broker_sh("status", {"KAFKA_BOOTSTRAP_SERVERS": CLOUD}, tmp_path)
    assert (status.returncode, status.stdout) == (0, f"KAFKA_BOOTSTRAP_SERVERS={CLOUD} is not the local broker\n")


def test_the_local_broker_is_looked_for_on_the_clients_port(tmp_path):
    status = broker_sh("status", {"KAFKA_BOOTSTRAP_SERVERS": "localhost:1"}, tmp_path)  # nothing listens on port 1
    assert (status.returncode, status.stdout) == (3, "Kafka is not running\n")


def test_a_bad_port_stops_the_broker_script_with_one_line(tmp_path):
    up = broker_sh("up", {"KAFKA_PORT": "9092", "KAFKA_BOOTSTRAP_SERVERS": "localhost:9094"}, tmp_path)
    assert (up.returncode, up.stdout) == (2, "")
    assert up.stderr == (
        "KAFKA_PORT=9092 and KAFKA_BOOTSTRAP_SERVERS='localhost:9094' name different ports of the "
        "local broker: set only one of them\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target", ["topics", "generate", "live", "live-demo", "reset", "bench", "sold-out"])
def test_every_target_that_needs_kafka_starts_it_through_broker_sh_up(target):
    """broker.sh up is where the local-or-not decision is made: no target starts a broker, or skips one, by itself."""
    commands = planned(target)
    assert "bash kafka/broker.sh up" in commands.splitlines(), commands
    assert commands.count("broker.sh") == 1, commands
