"""Exactly once through the real broker: killed at any moment and resumed, a dataflow writes each output once.

With UTOPIA_GUARANTEE=exactly-once a run is killed again and again, at the points that matter for
its transactions and when its committed outputs have reached a given count, and each time resumed
from its recovery store; a last resume reads to the end. Read `read_committed`, every output topic
then holds exactly what one uninterrupted run writes (file mode): every alert once, no alert
missing, every changelog key on its final value (docs/outputs.md#delivery).
"""

import json
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests import test_kafka_guarantees
from tests.kafka_support import Cluster
from tests.test_kafka_guarantees import free_ports, put, uninterrupted

pytestmark = pytest.mark.kafka

EXACTLY_ONCE = {"UTOPIA_GUARANTEE": "exactly-once", "UTOPIA_BATCH_SIZE": "50"}
world = test_kafka_guarantees.world
"""The data set, in files and as records, and the broker's topics for it (a fixture shared with those tests)."""
CRASHES = ["snapshotted:1", "stored:1", "committed:2", "stored:3", "snapshotted:4"]
"""Where a run dies (utopia.io.transactions.CRASH_AT): while a snapshot is made; when the store has it but
Kafka has not committed (its records are sent again from their file); just after Kafka committed."""
ALERTS = {
    "sold_out": ["event-alerts", "event-streamer-alerts", "dead-letters"],
    "suggested_events_genre": ["genre-event-suggestions", "dead-letters"],
    "global_totals": ["dead-letters"],
}
CHANGELOGS = {"global_totals": ["global-totals"]}
WATCHED = {
    "sold_out": "event-streamer-alerts",
    "suggested_events_genre": "genre-event-suggestions",
    "global_totals": "global-totals",
}
"""The output whose committed count decides when a run is killed."""
MEASURED: dict[str, str] = {}


def slices(records: list, count: int) -> list[list]:
    """The data set in `count` parts, in the order it was generated: each run of a test gets new input."""
    size = -(-len(records) // count)
    return [records[n : n + size] for n in range(0, len(records), size)]


def new_store(tmp_path, processes: int = 1):
    recovery = tmp_path / "recovery"
    recovery.mkdir()
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(recovery), str(2 * processes)], check=True)
    return ("-r", str(recovery), "-s", "1", "-b", "0")


def crash_at(cluster: Cluster, dataflow: str, flags: tuple, point: str) -> None:
    """A tailing run that dies at `point` of a transaction."""
    process = cluster.start(dataflow, EXACTLY_ONCE | {"UTOPIA_TAIL": "true", "UTOPIA_TEST_CRASH_AT": point}, flags)
    try:
        process.wait(timeout=60)
    finally:
        process.send_signal(signal.SIGKILL)
    assert process.returncode == 137, f"the run never got to {point}: {process.stderr.read()}"


def killed_when(cluster: Cluster, dataflow: str, flags: tuple, output: str, count: int) -> None:
    """A tailing run killed with SIGKILL once `count` records of `output` are committed (or after 20 s)."""
    process = cluster.start(dataflow, EXACTLY_ONCE | {"UTOPIA_TAIL": "true"}, flags)
    try:
        deadline = time.monotonic() + 20
        while len(cluster.read(output)) < count and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL, process.stderr.read()


def assert_exactly_once(cluster, files, tmp_path, monkeypatch, dataflow, workers: int = 1) -> None:
    for output in ALERTS.get(dataflow, []):
        if workers > 1 and output in ACROSS_WORKERS:
            got = Counter(map(ACROSS_WORKERS[output], cluster.read(output)))
            assert got and max(got.values()) == 1, f"{output}: {sum(got.values()) - len(got)} written twice"
            MEASURED[f"{dataflow} {output}"] = f"{sum(got.values())} records, 0 twice"
            continue
        want = Counter(map(json_of, uninterrupted(cluster, files, tmp_path, monkeypatch, dataflow, output)))
        got = Counter(map(json_of, cluster.read(output)))
        assert not want - got, f"{output}: {sum((want - got).values())} missing, {sum((got - want).values())} extra"
        assert not got - want, f"{output}: {sum((got - want).values())} written twice or never written by one run"
        MEASURED[f"{dataflow} {output}"] = f"{sum(got.values())} records, 0 missing, 0 twice"
    for output in CHANGELOGS.get(dataflow, []):
        want = dict(uninterrupted(cluster, files, tmp_path, monkeypatch, dataflow, output))
        got = dict(cluster.read(output))
        if dataflow == "global_totals":  # the time of the last update, and the events past by the wall clock then
            want, got = ({key: without_clock(value) for key, value in finals.items()} for finals in (want, got))
        assert got == want, f"{output}: a final value differs"
        MEASURED[f"{dataflow} {output}"] = f"{len(got)} key(s) on their final value"


def json_of(record: tuple) -> str:
    return json.dumps(record, sort_keys=True)


ACROSS_WORKERS = {"event-streamer-alerts": lambda record: (record[1]["eventid"], record[0])}
"""With several workers, which customers an event's alert names depends on how the workers' records
interleave (docs/outputs.md#ordering), so it can differ from one worker's: there, no customer may be
told twice of an event."""


def without_clock(value: dict) -> dict:
    return {k: v for k, v in value.items() if k not in ("as_of", "events_occurred")}


@pytest.mark.parametrize(
    ("dataflow", "workers"),
    [
        ("sold_out", "1"),
        ("global_totals", "1"),
        ("suggested_events_genre", "1"),
        ("sold_out", "2"),
    ],
)
def test_killed_again_and_again_and_resumed_writes_every_output_once(world, tmp_path, monkeypatch, dataflow, workers):
    cluster, files, records = world
    flags = new_store(tmp_path) + ("-w", workers)
    parts = iter(slices(records, len(CRASHES) + 3))
    for point in CRASHES:
        put(cluster, next(parts))
        crash_at(cluster, dataflow, flags, point)
    watched = WATCHED[dataflow]
    for count in (1, 10):
        before = len(cluster.read(watched))
        put(cluster, next(parts))
        killed_when(cluster, dataflow, flags, watched, before + count)
    put(cluster, next(parts))
    done = cluster.run(dataflow, *flags, env=EXACTLY_ONCE)
    assert done.returncode == 0, done.stderr
    assert_exactly_once(cluster, files, tmp_path, monkeypatch, dataflow, int(workers))
    print(MEASURED)


@pytest.mark.parametrize("order", ["partition", "global"])
def test_two_processes_killed_and_resumed_write_every_alert_once(world, tmp_path, monkeypatch, order):
    # In global order, one process reads every partition and both write outputs: each in transactions of its own.
    cluster, files, records = world
    flags = new_store(tmp_path, processes=2)
    parts = iter(slices(records, 5))

    def both(env: dict, kill_after: float | None = None) -> list[subprocess.Popen]:
        """Both processes, until one dies (a crash point; the other is then lost), `kill_after` s, or the end."""
        addresses = ";".join(f"localhost:{port}" for port in free_ports(2))
        processes = [
            cluster.start(
                "sold_out", EXACTLY_ONCE | {"UTOPIA_ORDER": order} | env, flags + ("-i", str(i), "-a", addresses)
            )
            for i in range(2)
        ]
        if kill_after is not None:
            deadline = time.monotonic() + kill_after
            while time.monotonic() < deadline and all(p.poll() is None for p in processes):
                time.sleep(0.1)
            for process in processes:
                process.send_signal(signal.SIGKILL)
        for process in processes:
            process.wait(timeout=120)
        return processes

    for point in ("stored:1", "committed:2", "snapshotted:3"):
        put(cluster, next(parts))
        crashed = both({"UTOPIA_TAIL": "true", "UTOPIA_TEST_CRASH_AT": point}, kill_after=60)
        assert 137 in [p.returncode for p in crashed], f"no process got to {point}"
    put(cluster, next(parts))
    both({"UTOPIA_TAIL": "true"}, kill_after=3)
    put(cluster, next(parts))
    done = both({"UTOPIA_TAIL": "false"})
    assert [p.returncode for p in done] == [0, 0], [p.stderr.read() for p in done]
    assert_exactly_once(cluster, files, tmp_path, monkeypatch, "sold_out", workers=2)


def test_exactly_once_without_a_recovery_store_stops_with_one_line(world):
    cluster, _, _ = world
    done = cluster.run("sold_out", env=EXACTLY_ONCE)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "utopia sold_out: UTOPIA_GUARANTEE=exactly-once needs a recovery store: run with -r DIR -s SECONDS "
        "-b SECONDS (make <dataflow> RECOVERY=1), see docs/outputs.md#delivery"
    ]
