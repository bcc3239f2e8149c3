"""What a crash can duplicate or lose, measured through the real broker (docs/outputs.md#delivery).

A dataflow killed with SIGKILL mid-input and resumed from its recovery store ends with every
changelog key on the value an uninterrupted run gives, and no alert missing; only alerts written
after the last snapshot come twice. Without recovery a restart reads everything again and writes
every alert again. Several processes and workers give the counts one worker gives.
"""

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Producer

from tests.kafka_support import Cluster
from utopia.cli import run_on_files
from utopia.io.kafka_io import EpochDeliveredSink, send
from utopia.io.recovery_store import RecoveryStore
from utopia.io.runtime import RunFlags
from utopia.models import DeadLetter
from utopia.tools.generator import Sizes, generate
from utopia.tools.loading import write_dir

pytestmark = pytest.mark.kafka

WORLD = Sizes(customers=300, artists=30, events=40, tickets=3000, streams=12000, zipcodes=6)
MEASURED: dict[str, str] = {}
INPUTS = {"sold_out": 4, "top_customer_artists": 1}
"""How many input topics each dataflow resumed here reads, of 3 partitions each."""


@pytest.fixture
def world(tmp_path_factory):
    """One data set (in files, which give the uninterrupted outputs), and the broker's topics for it, empty."""
    cluster = Cluster()
    start_ms = int(time.time() * 1000) - 8 * 3_600_000
    files = tmp_path_factory.mktemp("world")
    write_dir(files, WORLD, seed=7, topics=cluster.settings.topics, start_ms=start_ms)
    records = list(generate(WORLD, seed=7, start_ms=start_ms))
    return cluster, files, records


def put(cluster: Cluster, records: list) -> None:
    """Records of the data set to the input topics, as `utopia generate` sends them."""
    producer, encoder = Producer(cluster.settings.kafka_config()), msgspec.json.Encoder()
    for record in records:
        send(
            producer,
            cluster.settings.topics.input(record.topic),
            record.key,
            encoder.encode(record.value),
            record.timestamp,
        )
    producer.flush()


def uninterrupted(cluster, files, tmp_path, monkeypatch, dataflow, output):
    for name, value in cluster.env.items():
        monkeypatch.setenv(name, value)
    run_on_files(dataflow, files, tmp_path / dataflow)
    topic = cluster.settings.topics.output(output)
    return [(line["key"], line["value"]) for line in map(json.loads, (tmp_path / dataflow / f"{topic}.jsonl").open())]


def killed_and_resumed(
    cluster, records, tmp_path, dataflow, started: str, midway: str, layout: tuple = (), env: dict | None = None
) -> Path:
    """With recovery: the first half read, the second half sent and the dataflow killed as it reads it, then resumed.

    `layout` is the killed run's worker flags (`-w 2`, say); the resumed run has 1 worker. `env`: settings of
    both runs. The recovery store's directory is returned.
    """
    env = env or {}
    recovery = tmp_path / f"recovery-{dataflow}"
    recovery.mkdir()
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(recovery), "1"], check=True)
    flags = ("-r", str(recovery), "-s", "1", "-b", "0")
    half = len(records) // 2
    put(cluster, records[:half])
    # Batches of 50: slow enough to be killed mid-way.
    first = cluster.start(dataflow, env | {"UTOPIA_TAIL": "true", "UTOPIA_BATCH_SIZE": "50"}, flags + layout)
    try:
        cluster.wait_for(started, 1, timeout_s=60)
        snapshotted(recovery)
        before = len(cluster.read(midway))
        put(cluster, records[half:])
        cluster.wait_for(midway, before + 1, timeout_s=60)  # it is reading them
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=120)
    assert first.returncode == -signal.SIGKILL
    assert f"recovery: {recovery} is a new store: the run starts at UTOPIA_START_OFFSET" in first.stderr.read()
    MEASURED[f"{dataflow} before the kill"] = f"{len(cluster.read(midway))} {midway}"
    resumed = cluster.run(dataflow, *flags, env=env | {"UTOPIA_TAIL": "false"})
    assert resumed.returncode == 0, resumed.stderr
    [line] = [line for line in resumed.stderr.splitlines() if "recovery: resuming" in line]
    done = re.search(
        rf"resuming from {recovery}, the snapshot before epoch \d+: (\d+) input partition\(s\) "
        r"go on after ([\d,]+) records already done",
        line,
    )
    assert done is not None, line
    assert int(done[1]) == 3 * INPUTS[dataflow] and 0 < int(done[2].replace(",", "")) < len(records), line
    return recovery


def snapshotted(recovery, timeout_s: float = 120) -> None:
    """Wait until a resume from the store would load some snapshot: the run's first epoch is complete."""
    deadline = time.monotonic() + timeout_s
    while True:
        store = RecoveryStore(recovery)
        try:
            execution, epoch = store.last_execution(), store.resume_epoch()
        finally:
            store.close()
        if execution is not None and epoch > execution.resume_epoch:
            return
        assert time.monotonic() < deadline, f"no snapshot in {recovery} after {timeout_s} s"
        time.sleep(0.2)


def test_sold_out_killed_and_resumed_misses_no_alert(world, tmp_path, monkeypatch):
    cluster, files, records = world
    expected = {
        output: uninterrupted(cluster, files, tmp_path, monkeypatch, "sold_out", output)
        for output in ("event-alerts", "event-streamer-alerts")
    }
    killed_and_resumed(cluster, records, tmp_path, "sold_out", "event-streamer-alerts", "event-alerts")
    for output, records in expected.items():
        want = Counter(json.dumps(r, sort_keys=True) for r in records)
        got = Counter(json.dumps(r, sort_keys=True) for r in cluster.read(output))
        assert not want - got, f"{output}: alerts missing after the resume"
        assert set(got) == set(want), f"{output}: alerts an uninterrupted run does not write"
        MEASURED[output] = f"{sum((got - want).values())} of {sum(want.values())} written twice"
    print(MEASURED)


@pytest.mark.parametrize("layout", [(), ("-w", "2")], ids=["1 worker", "2 workers, resumed on 1"])
def test_top_customer_artists_killed_and_resumed_ends_on_every_final_value(world, tmp_path, monkeypatch, layout):
    cluster, files, records = world
    expected = dict(
        uninterrupted(cluster, files, tmp_path, monkeypatch, "top_customer_artists", "top-customer-artists")
    )
    killed_and_resumed(
        cluster, records, tmp_path, "top_customer_artists", "top-customer-artists", "top-customer-artists", layout
    )
    finals = dict(cluster.read("top-customer-artists"))  # the last value of each key
    # The first run reads a live feed: a partition still idle when another gets records is not waited
    # for (docs/outputs.md#ordering), so which of two artists with equal counts got there first may
    # differ from file mode. The counts may not.
    assert counts_of(finals) == counts_of(expected)


@pytest.mark.parametrize(("written", "resumed"), [("global", "partition"), ("partition", "global")])
def test_in_global_order_a_store_resumes_on_another_layout_and_is_refused_in_the_other_order(
    world, tmp_path, monkeypatch, written, resumed
):
    # With UTOPIA_ORDER=global one source partition holds every topic partition's offset: it resumes on
    # any worker. A store of one order holds other source partitions than a run of the other reads.
    cluster, files, records = world
    expected = dict(
        uninterrupted(cluster, files, tmp_path, monkeypatch, "top_customer_artists", "top-customer-artists")
    )
    order = {"UTOPIA_ORDER": written}
    store = killed_and_resumed(
        cluster,
        records,
        tmp_path,
        "top_customer_artists",
        "top-customer-artists",
        "top-customer-artists",
        ("-w", "2"),
        order,
    )
    assert counts_of(dict(cluster.read("top-customer-artists"))) == counts_of(expected)
    refused = cluster.run("top_customer_artists", "-r", str(store), "-s", "1", "-b", "0", env={"UTOPIA_ORDER": resumed})
    assert refused.returncode == 1
    assert refused.stderr == (
        f"utopia top_customer_artists: the recovery store {store} was written with UTOPIA_ORDER={written} and "
        f"this run has UTOPIA_ORDER={resumed}: resume with {written}, or start with a new recovery store\n"
    )


def counts_of(finals: dict) -> dict[str, list[int]]:
    return {key: [artist["streams"] for artist in value["top"]] for key, value in finals.items()}


def test_a_restart_without_recovery_writes_every_alert_again(world):
    cluster, _, records = world
    put(cluster, records)
    for _ in range(2):
        done = cluster.run("purchase_event_ticket")
        assert done.returncode == 0, done.stderr
    responses = Counter(json.dumps(r, sort_keys=True) for r in cluster.read("ticket-response"))
    assert set(responses.values()) == {2}  # each of the 3,000 twice


def test_a_ticket_that_waits_in_another_process_until_the_end_is_dead_lettered_as_it_was_read(world):
    """Tickets of events that never come: each event's desk is in one process, its tickets are read by both.

    Those the other process reads cross without their message's bytes (utopia.steps.wire), and
    their dead letters still carry each message as it was read: partition, offset, key and value.
    """
    cluster, _, records = world
    put(cluster, records)
    producer, sent = Producer(cluster.settings.kafka_config()), []
    topic = cluster.settings.topics.input("tickets")
    for n in range(60):  # events on every worker's shards: some tickets cross, whichever partitions a process reads
        value = f'{{"id": "t-orphan-{n}", "customerid": "c-{n}", "eventid": "e-never-{n % 12}", "price": 2.5}}'.encode()
        producer.produce(
            topic,
            value,
            f"t-orphan-{n}".encode(),
            on_delivery=lambda error, message: sent.append(
                (message.partition(), message.offset(), message.key().decode(), message.value())
            ),
        )
    producer.flush()
    assert {partition for partition, *_ in sent} == {0, 1, 2}  # read by both processes
    addresses = ";".join(f"localhost:{port}" for port in free_ports(2))
    processes = [
        cluster.start("purchase_event_ticket", {"UTOPIA_TAIL": "false"}, ("-i", str(i), "-a", addresses))
        for i in range(2)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    letters = [letter for _, letter in cluster.read("dead-letters") if "event e-never-" in letter["error"]]
    assert sorted((d["topic"], d["partition"], d["offset"], d["key"], d["value"]) for d in letters) == sorted(
        (topic, partition, offset, key, value.decode()) for partition, offset, key, value in sent
    )
    assert {d["error"] for d in letters} == {f"waited for event e-never-{n}, which never arrived" for n in range(12)}
    assert len(cluster.read("ticket-response")) == WORLD.tickets  # every other ticket answered


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.parametrize(
    ("dataflow", "output"),
    [
        ("customer_stream_count", "customer-stream-count"),
        ("top_customer_artists", "top-customer-artists"),
        ("must_see_venue", "must-see-venue"),  # each process learns every event's venue from the other (`everywhere`)
    ],
)
def test_two_processes_of_two_workers_give_what_one_worker_gives(world, tmp_path, monkeypatch, dataflow, output):
    cluster, files, records = world
    put(cluster, records)
    expected = dict(uninterrupted(cluster, files, tmp_path, monkeypatch, dataflow, output))
    addresses = ";".join(f"localhost:{port}" for port in free_ports(2))
    processes = [
        cluster.start(dataflow, {"UTOPIA_TAIL": "false"}, ("-w", "2", "-i", str(i), "-a", addresses)) for i in range(2)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    got = dict(cluster.read(output))
    if dataflow == "top_customer_artists":
        # Counts are the same; which of two artists with equal counts "got there first" depends on
        # how the workers' partitions interleave (docs/outputs.md#ordering), so compare the counts.
        got, expected = counts_of(got), counts_of(expected)
    if dataflow == "must_see_venue":  # the same, for which of two venues with equal counts leads
        got, expected = ({metric: leader["count"] for metric, leader in finals.items()} for finals in (got, expected))
        assert set(expected) == {"events", "customers"}
    assert got == expected


def test_at_least_once_with_a_store_has_kafka_deliver_an_epochs_outputs_before_its_snapshot(tmp_path):
    """The input offsets of a snapshot never pass an output that Kafka does not have (utopia.io.worker_sink)."""
    cluster = Cluster()
    flags = RunFlags(tmp_path, 10.0, process_id=0, processes=1, workers_per_process=1)
    sink = EpochDeliveredSink(cluster.settings, "test", cluster.settings.topics.output("dead-letters"), flags)
    [part_name] = sink.list_parts()
    part = sink.build_part("test.out", part_name, None)
    letters = [
        (f"k{n}", DeadLetter(dataflow="test", topic="in", partition=0, offset=n, key=f"k{n}", value="v", error="x"))
        for n in range(2000)
    ]
    part.write_batch([batch for _, batch in sink.items_of(letters)])
    assert len(part.producer.producer) > 0  # produced in the background: not all delivered yet
    assert part.snapshot() is None  # nothing to resume: a store resumes under any worker layout
    assert len(part.producer.producer) == 0
    assert sorted(value["offset"] for _, value in cluster.read("dead-letters")) == list(range(2000))
    part.close()
