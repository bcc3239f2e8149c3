"""Against a secured cluster (SASL_SSL, PLAIN, a CA of its own, the workshop's ACLs): it runs, and failures are one line.

The broker is the test's own (tests/secure_broker.py), started beside the local one on free ports.
"""

import os
import subprocess
import sys
from collections import Counter

import msgspec
import pytest
from confluent_kafka import Producer

from tests.kafka_support import ROOT, read_topic
from tests.secure_broker import SecureBroker
from utopia.config import Settings
from utopia.io.kafka_io import send
from utopia.io.topics import create
from utopia.models import Stream

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    secured = SecureBroker(tmp_path_factory.mktemp("secured"))
    admin = Settings.from_env(secured.env("admin"))
    create(admin, partitions=3, quiet=True)  # auto-creation is off, as on Confluent Cloud
    producer = Producer(secured.admin_config())
    for i in range(30):
        stream = Stream(f"s{i}", f"c{i % 3}", "a1")
        send(producer, admin.topics.input("streams"), stream.id, msgspec.json.encode(stream))
    producer.flush()
    del producer  # it would log its reconnections through the outage test
    yield secured
    secured.close()


def run(env: dict[str, str], *command: str) -> subprocess.CompletedProcess:
    command = command or ("-m", "bytewax.run", "dataflows.customer_stream_count")
    return subprocess.run([sys.executable, *command], env=os.environ | env | {"UTOPIA_TAIL": "false"}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_a_dataflow_runs_as_the_workshop_user_trusting_the_clusters_own_ca(broker):
    done = run(broker.env("alice"))
    assert done.returncode == 0, done.stderr
    counts = read_topic(broker.admin_config(), "kafka-workshop-customer-stream-count")
    assert {key: value["streams"] for key, value in counts} == {"c0": 10, "c1": 10, "c2": 10}


def test_a_wrong_password_says_so_and_which_variables_to_check(broker):
    done = run(broker.env("alice", password="not-the-password"))
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith(f"utopia customer_stream_count: Kafka at localhost:{broker.port} refused the credentials "
                           "of KAFKA_SASL_USERNAME='alice'"), line
    assert line.endswith("check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
    assert "not-the-password" not in done.stderr


def test_a_ca_not_trusted_says_so_and_which_variable_to_check(broker):
    done = run(broker.env("alice", ca=False))
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert "TLS with Kafka at" in line and "KAFKA_SSL_CA_LOCATION" in line, line


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_a_plaintext_client_on_a_tls_port_is_told_the_port_speaks_tls(broker, protocol):
    done = run(broker.env("alice") | {"KAFKA_SECURITY_PROTOCOL": protocol})
    assert done.returncode == 1
    assert one_line(done.stderr) == (
        f"utopia customer_stream_count: Kafka at localhost:{broker.port} speaks TLS, and KAFKA_SECURITY_PROTOCOL="
        f"{protocol} does not: set KAFKA_SECURITY_PROTOCOL=SASL_SSL (or SSL)")


def test_the_generator_denied_a_write_says_so_in_one_line(broker):
    done = run(broker.env("alice"), "-m", "utopia.cli", "generate", "--to", "kafka", "--customers", "2", "--artists", "1",
               "--events", "1", "--tickets", "1", "--streams", "1")
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("utopia")]
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and "data-demo-" in lines[0] and "uthoriz" in lines[0], done.stderr


def test_a_broker_outage_is_told_once_when_it_starts_and_once_when_it_answers_again(broker):
    import signal
    import threading
    import time

    env = os.environ | broker.env("alice") | {"UTOPIA_TAIL": "true", "UTOPIA_OUTPUT_PREFIX": "kafka-workshop-outage-",
                                                 "UTOPIA_CREATE_TOPICS": "true"}
    live = subprocess.Popen([sys.executable, "-m", "bytewax.run", "dataflows.customer_stream_count"], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(live.stderr), daemon=True)
    reader.start()

    def wait_for_line(text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in lines):
            assert time.monotonic() < deadline, f"no line with {text!r} after {timeout_s} s: {lines}"
            time.sleep(0.2)

    try:
        time.sleep(8)  # it has started and read the streams
        broker.stop()
        wait_for_line("is unreachable", timeout_s=60)
        time.sleep(5)  # librdkafka retries all the while
        broker.start()
        wait_for_line("answers again, after", timeout_s=60)  # told when it answers, with no record coming
        producer = Producer(broker.admin_config())  # a new stream: records flow again
        send(producer, "data-demo-streams", "s-after", msgspec.json.encode(Stream("s-after", "c0", "a1")))
        producer.flush()
        time.sleep(8)  # it reads it
        live.send_signal(signal.SIGINT)
        live.wait(timeout=60)
        reader.join(timeout=30)
    finally:
        live.kill()
        if broker.process.poll() is not None:
            broker.start()
    stderr = "".join(lines)
    assert sum("is unreachable" in line for line in lines) == 1, stderr
    assert sum("answers again, after" in line for line in lines) == 1, stderr
    assert len(lines) < 40, stderr  # librdkafka alone printed hundreds of lines for such an outage
    assert all(" customer_stream_count " in line for line in lines), stderr
    counts = read_topic(broker.admin_config(), "kafka-workshop-outage-customer-stream-count")
    assert {key: value["streams"] for key, value in counts} == {"c0": 11, "c1": 10, "c2": 10}  # exact after it


def test_exactly_once_needs_the_transactional_id_acl_says_so_in_one_line_and_runs_once_granted(broker, tmp_path):
    from confluent_kafka.admin import (
        AclBinding, AclOperation, AclPermissionType, AdminClient, ResourcePatternType, ResourceType,
    )

    recovery = tmp_path / "recovery"
    recovery.mkdir()
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(recovery), "1"], check=True)
    env = broker.env("alice") | {"UTOPIA_GUARANTEE": "exactly-once", "UTOPIA_OUTPUT_PREFIX": "kafka-workshop-eos-",
                                 "UTOPIA_CREATE_TOPICS": "true"}
    flags = ("-m", "bytewax.run", "dataflows.customer_stream_count", "-r", str(recovery), "-s", "1", "-b", "0")
    done = run(env, *flags)
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith("utopia customer_stream_count: Kafka refused the transactional id "
                           "kafka-workshop-eos-customer_stream_count-permissions"), line
    assert "WRITE and DESCRIBE on transactional ids with the prefix kafka-workshop-eos-" in line, line

    grant = [AclBinding(ResourceType.TRANSACTIONAL_ID, "kafka-workshop-", ResourcePatternType.PREFIXED, "User:alice",
                        "*", operation, AclPermissionType.ALLOW) for operation in (AclOperation.WRITE,
                                                                                  AclOperation.DESCRIBE)]
    admin = AdminClient(broker.admin_config())  # must outlive its futures
    for future in admin.create_acls(grant).values():
        future.result(timeout=30)
    done = run(env, *flags)
    assert done.returncode == 0, done.stderr
    counts = read_topic(broker.admin_config(), "kafka-workshop-eos-customer-stream-count")
    streams = Counter(value["customerid"] for _, value in read_topic(broker.admin_config(), "data-demo-streams"))
    assert {key: value["streams"] for key, value in counts} == streams  # the outage test may have added one
