"""Against a secured cluster (SASL_SSL, PLAIN, its own CA, the workshop's ACLs): it runs, and failures are one line.

The broker is the test's own (tests/secure_broker.py), started beside the local one on free ports.
"""

import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AclOperation, AdminClient, ResourceType

from tests.kafka_support import ROOT, read_topic
from tests.secure_broker import SecureBroker, allow, free_port
from utopia.config import Settings
from utopia.io.kafka_io import send
from utopia.io.topics import create
from utopia.models import INPUT_RECORDS, Stream

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
    return subprocess.run(
        [sys.executable, *command],
        env=os.environ | env | {"UTOPIA_TAIL": "false"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def started(env: dict[str, str], *command: str) -> subprocess.Popen:
    """`python <command>` left running, as a user starts it, its stderr to read; the test stops it."""
    return subprocess.Popen(
        [sys.executable, *command], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


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
    assert line.startswith(
        f"utopia customer_stream_count: Kafka at localhost:{broker.port} refused the credentials "
        "of KAFKA_SASL_USERNAME='alice'"
    ), line
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
        f"{protocol} does not: set KAFKA_SECURITY_PROTOCOL=SASL_SSL (or SSL)"
    )


def test_the_generator_denied_a_write_says_so_in_one_line(broker):
    done = run(
        broker.env("alice"),
        "-m",
        "utopia.cli",
        "generate",
        "--to",
        "kafka",
        "--customers",
        "2",
        "--artists",
        "1",
        "--events",
        "1",
        "--tickets",
        "1",
        "--streams",
        "1",
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("utopia")]
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and "data-demo-" in lines[0] and "uthoriz" in lines[0], done.stderr


def test_a_broker_outage_is_told_once_when_it_starts_and_once_when_it_answers_again(broker):
    import signal

    env = (
        os.environ
        | broker.env("alice")
        | {
            "UTOPIA_TAIL": "true",
            "UTOPIA_OUTPUT_PREFIX": "kafka-workshop-outage-",
            "UTOPIA_CREATE_TOPICS": "true",
            "UTOPIA_CHANGELOG_FLUSH_MS": "100",
        }
    )
    live = started(env, "-m", "bytewax.run", "dataflows.customer_stream_count")
    said = Said(live)
    output = "kafka-workshop-outage-customer-stream-count"
    with through_an_outage(broker, live):
        counted(broker, output, {"c0": 10, "c1": 10, "c2": 10})  # it has started and read the streams
        broker.stop()
        said.wait_for("is unreachable")
        time.sleep(5)  # librdkafka retries all the while
        broker.start()
        said.wait_for("answers again, after")  # told when it answers, with no record coming
        producer = Producer(broker.admin_config())  # a new stream: records flow again
        send(producer, "data-demo-streams", "s-after", msgspec.json.encode(Stream("s-after", "c0", "a1")))
        producer.flush()
        counted(broker, output, {"c0": 11, "c1": 10, "c2": 10})  # it reads it
        live.send_signal(signal.SIGINT)
        live.wait(timeout=60)
    stderr = said.text()
    lines = stderr.splitlines()
    assert sum("is unreachable" in line for line in lines) == 1, stderr
    assert sum("answers again, after" in line for line in lines) == 1, stderr
    assert len(lines) < 40, stderr  # librdkafka alone printed hundreds of lines for such an outage
    assert all(" customer_stream_count " in line for line in lines), stderr
    counts = read_topic(broker.admin_config(), output)
    assert {key: value["streams"] for key, value in counts} == {"c0": 11, "c1": 10, "c2": 10}  # exact after it


@contextmanager
def through_an_outage(broker: SecureBroker, process: subprocess.Popen) -> Iterator[None]:
    """However the test ends: `process` killed if it still runs, and the broker up again for the next tests."""
    try:
        yield
    finally:
        process.kill()
        if broker.process.poll() is not None:
            broker.start()


class Said:
    """A running process's stderr, read as it comes (a thread), so a test can wait for a line."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(process.stderr), daemon=True)
        self.reader.start()

    def wait_for(self, text: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, f"no line with {text!r} after {timeout_s} s: {self.text()}"
            time.sleep(0.2)

    def text(self) -> str:
        self.reader.join(timeout=60)
        return "".join(self.lines)


def counted(broker: SecureBroker, output: str, streams: dict[str, int], timeout_s: float = 120) -> None:
    """Wait until the output's last value per customer is `streams` (the dataflow has read that far)."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = {key: value["streams"] for key, value in read_topic(broker.admin_config(), output)}
        if seen == streams:
            return
        assert time.monotonic() < deadline, f"{output}: {seen} after {timeout_s} s, not {streams}"
        time.sleep(0.5)


def test_exactly_once_needs_the_transactional_id_acl_says_so_in_one_line_and_runs_once_granted(broker, tmp_path):
    recovery = tmp_path / "recovery"
    recovery.mkdir()
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(recovery), "1"], check=True)
    env = broker.env("alice") | {
        "UTOPIA_GUARANTEE": "exactly-once",
        "UTOPIA_OUTPUT_PREFIX": "kafka-workshop-eos-",
        "UTOPIA_CREATE_TOPICS": "true",
    }
    flags = ("-m", "bytewax.run", "dataflows.customer_stream_count", "-r", str(recovery), "-s", "1", "-b", "0")
    done = run(env, *flags)
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith(
        "utopia customer_stream_count: Kafka refused the transactional id "
        "kafka-workshop-eos-customer_stream_count-permissions"
    ), line
    assert "WRITE and DESCRIBE on transactional ids with the prefix kafka-workshop-eos-" in line, line

    broker.grant(
        *(
            allow("alice", ResourceType.TRANSACTIONAL_ID, "kafka-workshop-", operation)
            for operation in (AclOperation.WRITE, AclOperation.DESCRIBE)
        )
    )
    done = run(env, *flags)
    assert done.returncode == 0, done.stderr
    counts = read_topic(broker.admin_config(), "kafka-workshop-eos-customer-stream-count")
    streams = Counter(value["customerid"] for _, value in read_topic(broker.admin_config(), "data-demo-streams"))
    assert {key: value["streams"] for key, value in counts} == streams  # the outage test may have added one


def test_a_live_feed_through_an_outage_logs_a_few_lines_and_stops_cleanly(broker):
    import signal

    env = os.environ | broker.env("admin") | {"UTOPIA_INPUT_PREFIX": "outage-feed-"}
    create(Settings.from_env(env), partitions=1, quiet=True)
    feed = started(env, "-m", "utopia.cli", "generate", "--to", "kafka", "--live", "--rate", "50")
    said = Said(feed)
    with through_an_outage(broker, feed):
        produced_to(broker, "outage-feed-streams", more_than=0)
        broker.stop()
        time.sleep(15)  # an outage: librdkafka retries all the while, and would say so hundreds of times
        broker.start()
        produced_to(broker, "outage-feed-streams", more_than=produced_to(broker, "outage-feed-streams", more_than=0))
        feed.send_signal(signal.SIGTERM)
        feed.wait(timeout=120)
    stderr = said.text()
    assert feed.returncode == 0, stderr
    lines = stderr.splitlines()
    assert len(lines) < 15, stderr
    assert lines[-1].startswith("stopped after producing ") and lines[-1].endswith(" records"), stderr


def produced_to(broker: SecureBroker, topic: str, more_than: int, timeout_s: float = 120) -> int:
    """Wait until the topic holds more than `more_than` records (its partitions' high watermarks); how many."""
    from confluent_kafka import Consumer, TopicPartition

    deadline = time.monotonic() + timeout_s
    consumer = Consumer(broker.admin_config() | {"group.id": "kafka-workshop-test"})
    try:
        while True:
            try:
                partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
                count = sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
            except Exception:  # the broker is still starting
                count = 0
            if count > more_than:
                return count
            assert time.monotonic() < deadline, f"{topic}: no more than {more_than} records after {timeout_s} s"
            time.sleep(0.5)
    finally:
        consumer.close()


def test_outputs_the_principal_may_not_write_are_named_before_the_run_starts_in_every_process(broker):
    # bob may read the inputs and see the outputs, but write none: Kafka refused the idempotent
    # producer's id, and sold_out aborted after 167 lines (rc 134) naming neither topic nor ACL.
    addresses = f"localhost:{free_port()};localhost:{free_port()}"
    env = os.environ | broker.env("bob") | {"UTOPIA_TAIL": "false"}
    processes = [started(env, "-m", "bytewax.run", "dataflows.sold_out", "-i", str(i), "-a", addresses) for i in (0, 1)]
    try:
        stderrs = [process.communicate(timeout=120)[1] for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, stderr in zip(processes, stderrs):
        assert process.returncode == 1, stderr
        assert one_line(stderr) == (
            "utopia sold_out: the principal (KAFKA_SASL_USERNAME='bob') may not write to output topic(s) "
            "kafka-workshop-dead-letters, kafka-workshop-event-alerts, kafka-workshop-event-streamer-alerts: it needs "
            "WRITE on them (a topic ACL on each name, or on the prefix kafka-workshop-)"
        )


def test_a_group_an_input_and_outputs_the_principal_may_not_use_are_named_in_one_line(broker):
    # Prefixes the ACLs do not cover: bob may see kafka-workshop-in-streams but not read it, and
    # may not even see the team-bob- outputs (nor whether they exist) or use its group.
    create(
        Settings.from_env(broker.env("admin") | {"UTOPIA_INPUT_PREFIX": "kafka-workshop-in-"}),
        names=["kafka-workshop-in-streams"],
        quiet=True,
    )
    done = run(broker.env("bob") | {"UTOPIA_INPUT_PREFIX": "kafka-workshop-in-", "UTOPIA_OUTPUT_PREFIX": "team-bob-"})
    assert done.returncode == 1
    assert one_line(done.stderr) == (
        "utopia customer_stream_count: the principal (KAFKA_SASL_USERNAME='bob') may not describe consumer group "
        "team-bob-customer_stream_count: it needs READ or DESCRIBE on it (a group ACL on that name, or on the prefix "
        "team-bob-); may not read input topic(s) kafka-workshop-in-streams: it needs READ on them (a topic ACL on "
        "each name, or on the prefix kafka-workshop-in-); may not describe output topic(s) team-bob-dead-letters, "
        "team-bob-customer-stream-count (nor learn whether they exist): it needs DESCRIBE and WRITE on them (a topic "
        "ACL on each name, or on the prefix team-bob-)"
    )


IDEMPOTENT_WRITE = """
from utopia.config import Settings
from utopia.io.faults import configure_logging
from utopia.io.kafka_io import KafkaTopicSink
from utopia.models import CustomerStreamCount

configure_logging("customer_stream_count")
settings = Settings.from_env()
sink = KafkaTopicSink(settings, "customer_stream_count", "kafka-workshop-customer-stream-count")
part = sink.build("customer_stream_count.write", 0, 1)
part.write_batch([("c0", CustomerStreamCount("c0", 1))])
part.close()
"""


def test_a_refused_idempotent_producer_is_one_line_naming_the_permissions(broker):
    # Kafka 3.0 and later grant an idempotent producer's id to a principal with WRITE on any topic,
    # which the check before the run asks for; an older cluster wants IDEMPOTENT_WRITE on the
    # cluster as well. The refusal (bob may write nowhere) reaches the sink here, past that check.
    done = run(broker.env("bob"), "-c", IDEMPOTENT_WRITE)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("utopia ")]
    assert lines == [
        "utopia customer_stream_count: cannot write to kafka-workshop-customer-stream-count (Failed to acquire "
        f"idempotence PID from broker sasl_ssl://localhost:{broker.port}/1: Broker: Cluster authorization failed): "
        "the principal (KAFKA_SASL_USERNAME='bob') needs WRITE on the output topics (Kafka 3.0 and later), or "
        "IDEMPOTENT_WRITE on the cluster (before 3.0)"
    ], done.stderr
    assert "Traceback" not in done.stderr and "FATAL" not in done.stderr, done.stderr


def revoked_while_running(broker, prefix: str, operation: AclOperation) -> tuple[subprocess.Popen, str, Settings]:
    """customer_stream_count tailing as bob, who may READ and WRITE its topics until `operation` is revoked.

    Once it has written, the ACL goes, and a stream a second is sent until the run ends (60 s at most).
    Inputs of its own too: the other tests count the streams they wrote.
    """
    settings = Settings.from_env(
        broker.env("admin") | {"UTOPIA_INPUT_PREFIX": f"{prefix}in-", "UTOPIA_OUTPUT_PREFIX": prefix}
    )
    counts, streams = settings.topics.output("customer-stream-count"), settings.topics.input("streams")
    create(settings, names=[streams, counts, settings.topics.output("dead-letters")], quiet=True)
    acls = {op: allow("bob", ResourceType.TOPIC, prefix, op) for op in (AclOperation.READ, AclOperation.WRITE)}
    broker.grant(*acls.values())
    producer = Producer(broker.admin_config())
    send(producer, streams, "s0", msgspec.json.encode(Stream("s0", "c0", "a1")))
    producer.flush()
    env = (
        os.environ
        | broker.env("bob")
        | {
            "UTOPIA_TAIL": "true",
            "UTOPIA_INPUT_PREFIX": f"{prefix}in-",
            "UTOPIA_OUTPUT_PREFIX": prefix,
            "UTOPIA_CHANGELOG_FLUSH_MS": "0",
        }
    )
    live = started(env, "-m", "bytewax.run", "dataflows.customer_stream_count")
    try:
        deadline = time.monotonic() + 60
        while not read_topic(broker.admin_config(), counts):  # it runs, and writes
            assert time.monotonic() < deadline and live.poll() is None, "no output within 60 s"
            time.sleep(0.5)
        broker.revoke(acls[operation])
        deadline = time.monotonic() + 60
        n = 0
        while live.poll() is None and time.monotonic() < deadline:  # new streams, until a refused one ends it
            n += 1
            send(producer, streams, f"s{n}", msgspec.json.encode(Stream(f"s{n}", "c0", "a1")))
            producer.flush()
            time.sleep(1)
        _, stderr = live.communicate(timeout=30)
    finally:
        live.kill()
        broker.revoke(*acls.values())
    return live, stderr, settings


def test_a_write_permission_revoked_while_running_ends_the_run_in_one_line_naming_the_topic(broker):
    live, stderr, settings = revoked_while_running(broker, "kafka-workshop-revoked-", AclOperation.WRITE)
    counts = settings.topics.output("customer-stream-count")
    assert live.returncode == 1, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("utopia ")]
    assert len(lines) == 1 and lines[0].startswith("utopia customer_stream_count: "), stderr
    assert lines[0].endswith(
        f"record(s) not delivered to {counts}: Broker: Topic authorization failed: the principal "
        f"(KAFKA_SASL_USERNAME='bob') needs WRITE on {counts}"
    ), stderr
    assert "Traceback" not in stderr and "panic" not in stderr, stderr


def test_a_read_permission_revoked_while_running_ends_the_run_in_one_line_naming_the_topic(broker):
    live, stderr, settings = revoked_while_running(broker, "kafka-workshop-unread-", AclOperation.READ)
    streams = settings.topics.input("streams")
    assert live.returncode == 1, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("utopia ")]
    assert len(lines) == 1 and lines[0].startswith(f"utopia customer_stream_count: cannot read {streams} ("), stderr
    assert lines[0].endswith(  # librdkafka's text names the broker: "Fetch from broker 1 failed: Broker: ..."
        f"Broker: Topic authorization failed): the principal (KAFKA_SASL_USERNAME='bob') needs READ on {streams}"
    ), stderr
    assert "Traceback" not in stderr and "panic" not in stderr, stderr


def test_tail_reads_an_output_as_the_workshop_user_and_topics_delete_is_refused_the_inputs(broker):
    env = broker.env("alice") | {"UTOPIA_OUTPUT_PREFIX": "kafka-workshop-tools-"}
    made = run(env, "-m", "utopia.cli", "topics", "create")
    assert made.returncode == 0, made.stderr
    producer = Producer(broker.admin_config())
    producer.produce("kafka-workshop-tools-global-totals", b'{"customers":2}', b"totals", partition=0, timestamp=1000)
    assert producer.flush(30) == 0
    tail = run(env, "-m", "utopia.cli", "tail", "global-totals")
    assert (tail.returncode, tail.stdout, tail.stderr) == (
        0,
        '{"topic":"kafka-workshop-tools-global-totals",'
        '"partition":0,"offset":0,"timestamp":1000,"key":"totals",'
        '"value":{"customers":2}}\n',
        "",
    )

    refused = run(env, "-m", "utopia.cli", "topics", "delete", "--yes")  # alice may only read the inputs
    assert refused.returncode == 2
    assert re.fullmatch(
        r"utopia: cannot delete topic data-demo-\w+: Broker: Topic authorization failed \(the outputs "
        r"are deleted; --outputs-only keeps the inputs\)",
        one_line(refused.stderr),
    ), refused.stderr
    left = set(AdminClient(broker.admin_config()).list_topics(timeout=30).topics)
    assert not {t for t in left if t.startswith("kafka-workshop-tools-")}
    assert {f"data-demo-{name}" for name in INPUT_RECORDS} <= left


def watched(broker, prefix: str) -> subprocess.CompletedProcess:
    """`utopia watch --once` as alice, on the outputs of `prefix`, on a terminal wide enough for a note on one line."""
    return run(
        broker.env("alice") | {"UTOPIA_OUTPUT_PREFIX": prefix, "COLUMNS": "300"}, "-m", "utopia.cli", "watch", "--once"
    )


def notes_of(frame: str) -> list[str]:
    return [line.rstrip() for line in frame.splitlines() if line.startswith("Kafka")]


def test_watch_names_the_outputs_it_may_not_read_shows_the_others_and_ends_with_rc_1(broker):
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    from tests.test_watch import TOTALS
    from utopia.models import DeadLetter

    prefix = "kafka-workshop-denied-"  # alice may do anything there, but for the two topics denied below
    create(Settings.from_env(broker.env("admin") | {"UTOPIA_OUTPUT_PREFIX": prefix}), partitions=3, quiet=True)
    producer = Producer(broker.admin_config())
    send(producer, f"{prefix}global-totals", "totals", msgspec.json.encode(TOTALS))
    send(
        producer,
        f"{prefix}dead-letters",
        "t-1",
        msgspec.json.encode(DeadLetter("sold_out", "data-demo-tickets", 0, 1, "t-1", "{", "not valid JSON")),
    )
    producer.flush()
    deny = [
        AclBinding(
            ResourceType.TOPIC,
            f"{prefix}{name}",
            ResourcePatternType.LITERAL,
            "User:alice",
            "*",
            AclOperation.READ,
            AclPermissionType.DENY,
        )
        for name in ("event-alerts", "dead-letters")
    ]
    admin = AdminClient(broker.admin_config())  # must outlive its futures
    for future in admin.create_acls(deny).values():
        future.result(timeout=30)

    done = watched(broker, prefix)
    assert done.returncode == 1 and done.stderr == "", done.stderr
    assert "1,234 customers   56,789 streams" in done.stdout, done.stdout
    assert "0 dead letters" in done.stdout, done.stdout  # the one written is not readable
    assert notes_of(done.stdout) == [
        f"Kafka denies KAFKA_SASL_USERNAME='alice' reading {prefix}dead-letters, {prefix}event-alerts: the "
        "principal needs READ and DESCRIBE on them"
    ]


def test_watch_of_outputs_hidden_by_the_acls_says_so_not_that_they_do_not_exist(broker):
    prefix = "other-team-"  # alice has no topic ACL there: the broker leaves these topics out of her list
    broker.grant(allow("alice", ResourceType.GROUP, prefix, AclOperation.READ))  # only the topics are refused
    create(Settings.from_env(broker.env("admin") | {"UTOPIA_OUTPUT_PREFIX": prefix}), partitions=3, quiet=True)
    done = watched(broker, prefix)
    assert done.returncode == 1 and done.stderr == "", done.stderr
    assert "global totals: none yet" in done.stdout, done.stdout
    assert notes_of(done.stdout) == [
        "Kafka denies KAFKA_SASL_USERNAME='alice' reading the output topics other-team-*: the principal needs READ "
        "and DESCRIBE on them"
    ]


def test_tail_and_watch_without_their_consumer_group_name_the_group_acl_in_one_line(broker):
    # carol may read the outputs but has no group ACL: confluent-kafka's consumers look up their group's coordinator
    # even when they only read assigned partitions, and tail said only "Group authorization failed".
    broker.grant(
        *(
            allow("carol", ResourceType.TOPIC, "kafka-workshop-", operation)
            for operation in (AclOperation.READ, AclOperation.DESCRIBE)
        )
    )
    for command, group in (
        (["tail", "global-totals"], "kafka-workshop-tail"),
        (["watch", "--once"], "kafka-workshop-watch"),
    ):
        done = run(broker.env("carol"), "-m", "utopia.cli", *command)
        assert done.returncode == 2, done.stderr
        assert one_line(done.stderr) == (
            f"utopia: the principal (KAFKA_SASL_USERNAME='carol') may not describe consumer group {group}: it needs "
            "READ or DESCRIBE on it (a group ACL on that name, or on the prefix kafka-workshop-)"
        )
