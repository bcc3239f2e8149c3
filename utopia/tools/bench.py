"""`make bench`: throughput and memory of every dataflow through the local broker, beside the raw client limit.

Loads a data set once into `bench-<its sizes>-<seed>-<partitions>p-data-demo-*` topics (kept for later runs),
measures how fast plain confluent-kafka with msgspec drains the streams topic and writes outputs
(utopia.tools.client_limit), then runs each dataflow with `python -m bytewax.run` (1 worker, 2 processes,
and 2 separate 1-worker runs at once) from the beginning until its input ends, and on empty topics (its
start-up), a few times each, and writes the median runs to docs/benchmarks.md with the CPU time they
took, the local broker's included, the records they wrote, and the pickled size of every dataflow's keyed states
on a smaller data set run in this process. The sections the other benches wrote there stay.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from utopia.cli import dataflow_names, load_build
from utopia.config import Settings
from utopia.io import testing, topics
from utopia.io.kafka_io import KafkaIO
from utopia.local_broker import local_port
from utopia.models import INPUT_RECORDS
from utopia.steps import Out, snapshots
from utopia.steps.shards import ShardLogic
from utopia.tools.client_limit import Limit, raw_consume, raw_produce
from utopia.tools.generator import Sizes, generate
from utopia.tools.loading import produce

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "docs" / "benchmarks.md"
FIRST_PORT = 2101
"""Timely's cluster ports for runs with several processes: this one and the next ones."""
BENCH_SIZES = Sizes(customers=100_000, artists=2_000, events=2_000, tickets=200_000, streams=1_000_000, zipcodes=25)
WORLD_OPTIONS = ("customers", "artists", "events", "tickets", "streams")
"""The sizes of the generated data set a bench run can change (`--customers 400000`)."""


@dataclass
class Run:
    dataflow: str
    workers: int
    records: int
    seconds: float
    peak_rss_mb: float
    cpu: float = 0.0
    """CPU seconds of the dataflow's processes, every thread (librdkafka's too), plus the local broker's."""
    startup: float = 0.0
    """Seconds the same run takes on empty input topics: start-up and shutdown, no records."""
    startup_cpu: float = 0.0
    """CPU seconds of that run on empty input topics."""
    separate: bool = False
    """`workers` separate 1-worker runs at once, each of the whole input (`records` counts them all)."""
    records_cpu: float | None = None
    """CPU seconds of the records over repeated runs: the median of their CPU s less the median of their
    start-ups'. A run's duration and its CPU time vary apart on this machine, so the cost per record is
    not taken from the run of median duration alone."""
    outputs: int = 0
    """Records the run wrote to its output topics, dead letters included."""
    store_mb: float = 0.0
    """Size of its recovery store at the end (every part-*.sqlite3 file), if it ran with one."""
    process_peaks_mb: tuple[float, ...] = ()
    """The peak resident memory of each process, process 0 first (`peak_rss_mb` is the most of them): with
    `UTOPIA_ORDER=global`, process 0 reads every partition and the others none."""

    @property
    def cores(self) -> float:
        """How many cores the run kept busy on average."""
        return self.cpu / self.seconds

    def ceiling(self, cores: int) -> float:
        """How many times faster than this run any run on more processes can be, with `cores` cores.

        It cannot start faster (each process starts as this one does), and at best the CPU time of
        the records (this run's minus its start-up's; more processes only add to it) spreads evenly
        over every core, the broker's share included.
        """
        return self.seconds / (self.startup + max(self.cpu - self.startup_cpu, 0.0) / cores)

    @property
    def cpu_per_million(self) -> float:
        """CPU seconds per million input records, start-up's taken off: what the records themselves cost."""
        cpu = self.cpu - self.startup_cpu if self.records_cpu is None else self.records_cpu
        return max(cpu, 0.0) / self.records * 1e6

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def rate_after_startup(self) -> float:
        return self.records / (self.seconds - self.startup)

    def vs_client_limit(self, consume: Limit, produce: Limit) -> float:
        """How near the plain client this run came: the seconds the plain client takes to read the run's
        input and write its outputs (each at its own rate), over the run's seconds. 1.0 is as fast."""
        return (self.records / consume.rate + self.outputs / produce.rate) / self.seconds


def input_settings(sizes: Sizes, seed: int, partitions: int) -> Settings:
    tag = "-".join(f"{getattr(sizes, field)}{field[0]}" for field in WORLD_OPTIONS)
    prefix = f"bench-{tag}-{seed}-{partitions}p-data-demo-"
    return Settings.from_env(os.environ | {"UTOPIA_INPUT_PREFIX": prefix, "UTOPIA_TAIL": "false"})


def topic_sizes(settings: Settings) -> dict[str, int]:
    """Records per input topic already on the broker (high watermarks)."""
    held = topic_records(settings, [settings.topics.input(name) for name in INPUT_RECORDS])
    return {name: held[settings.topics.input(name)] for name in INPUT_RECORDS if settings.topics.input(name) in held}


def topic_records(settings: Settings, names: list[str]) -> dict[str, int]:
    """Records each of these topics holds, by its watermarks; a topic not on the broker is left out."""
    consumer = Consumer(settings.kafka_config() | {"group.id": settings.topics.client_id("bench")})
    held = {}
    metadata = consumer.list_topics(timeout=10)
    for topic in names:
        if topic in metadata.topics:
            marks = [_watermarks(consumer, TopicPartition(topic, p)) for p in metadata.topics[topic].partitions]
            held[topic] = sum(high - low for low, high in marks)  # retention may have deleted some
    consumer.close()
    return held


def _watermarks(consumer: Consumer, partition: TopicPartition, timeout_s: float = 30.0) -> tuple[int, int]:
    """Low and high watermark, waiting while the broker is still electing leaders (just after it started)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return consumer.get_watermark_offsets(partition, timeout=10)
        except KafkaException as error:
            electing = error.args[0].code() in (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE)
            if not electing or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def load(settings: Settings, sizes: Sizes, seed: int, partitions: int) -> dict[str, int]:
    counts = topic_sizes(settings)
    if counts.get("streams") == sizes.streams and counts.get("tickets") == sizes.tickets:
        print(f"input already loaded: {counts}", file=sys.stderr)
        return counts
    started = time.monotonic()
    counts = produce(settings, sizes, seed, partitions)
    print(f"loaded in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return counts


class Delivery(NamedTuple):
    """How a run delivers its outputs: its settings, and the recovery flags it runs with (a new store each run)."""

    label: str
    env: dict[str, str]
    recovery_flags: tuple[str, ...] = ()


AT_LEAST_ONCE = Delivery("at least once, no recovery", {})
RECOVERY_EVERY_10_S = Delivery("at least once, recovery every 10 s", {}, ("-s", "10", "-b", "10"))


PARTITION_ORDER = "partition"
"""`UTOPIA_ORDER`'s default, which the benches run with unless told: each worker orders its own partitions."""


class Kind(NamedTuple):
    """A kind of run: on how many processes, connected or `separate`, how it delivers, and how its workers order
    the records they apply (`UTOPIA_ORDER`, docs/outputs.md#ordering)."""

    workers: int
    separate: bool = False
    delivery: Delivery = AT_LEAST_ONCE
    order: str = PARTITION_ORDER


def kinds_of(workers: list[int]) -> list[Kind]:
    """Each worker count as one connected run, and each above 1 also as that many separate 1-worker runs."""
    return [Kind(w) for w in workers] + [Kind(w, separate=True) for w in workers if w > 1]


def run_dataflow(
    name: str,
    workers: int,
    records: int,
    settings: Settings,
    separate: bool = False,
    delivery: Delivery = AT_LEAST_ONCE,
    order: str = PARTITION_ORDER,
) -> Run:
    """The dataflow from its launch to its exit at the end of the input, as separate processes.

    Its output topics are created before and deleted after, as `utopia topics create` would have
    them ready for a real deployment: the run does not wait for the broker to auto-create them.
    `separate`: `workers` unconnected 1-worker runs at once, each reading the whole input, to tell
    what two busy processes cost each other on this machine from what exchanging records costs.
    """
    env = (
        os.environ
        | {
            "UTOPIA_INPUT_PREFIX": settings.topics.input_prefix,
            "UTOPIA_OUTPUT_PREFIX": f"bench-{uuid.uuid4().hex[:6]}-",
            "UTOPIA_TAIL": "false",
            "UTOPIA_ORDER": order,
        }
        | delivery.env
    )
    run_settings = Settings.from_env(env)
    outputs = dataflow_io(name, run_settings).outputs
    topics.create(run_settings, names=outputs, quiet=True)
    command = [sys.executable, "-m", "bytewax.run", module_of(name)]
    store = None
    if delivery.recovery_flags:
        store = tempfile.TemporaryDirectory(prefix="bench-recovery-")
        subprocess.run([sys.executable, "-m", "bytewax.recovery", store.name, "1"], check=True, capture_output=True)
        command += ["-r", store.name, *delivery.recovery_flags]
    if separate:
        records *= workers
    broker = local_broker(settings)
    broker_cpu = _cpu_seconds(broker) if broker else 0.0
    started = time.monotonic()
    processes = start_processes(command, workers, env, separate)
    peak_kb = dict.fromkeys(range(len(processes)), 0)
    running, cpu = dict(enumerate(processes)), 0.0
    while running:
        for n, process in list(running.items()):
            peak_kb[n] = max(peak_kb[n], _high_water_kb(process.pid))
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)  # unlike Popen.poll, says what it cost
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                cpu += usage.ru_utime + usage.ru_stime
                del running[n]
        time.sleep(0.02)
    seconds = time.monotonic() - started
    if broker:
        cpu += _cpu_seconds(broker) - broker_cpu
    written = sum(topic_records(run_settings, outputs).values())
    topics.delete(run_settings, outputs)
    store_mb = 0.0
    if store is not None:
        store_mb = sum(part.stat().st_size for part in Path(store.name).glob("part-*.sqlite3")) / 1e6
        store.cleanup()
    for process in processes:
        if process.returncode != 0:
            raise SystemExit(f"{name} with {workers} workers failed (exit {process.returncode})")
    return Run(
        name,
        workers,
        records,
        seconds,
        max(peak_kb.values()) / 1024,
        cpu,
        separate=separate,
        outputs=written,
        store_mb=store_mb,
        process_peaks_mb=tuple(peak_kb[n] / 1024 for n in range(len(processes))),
    )


def start_processes(
    command: list[str], workers: int, env: dict[str, str], separate: bool = False, stderr: int | None = None
) -> list[subprocess.Popen]:
    """`workers` processes of this `bytewax.run` command, process 0 first: connected (`-i`/`-a`) into one run, or
    `separate` runs of their own."""
    if separate or workers == 1:
        commands = [command] * workers
    else:
        addresses = ";".join(f"localhost:{FIRST_PORT + i}" for i in range(workers))
        commands = [command + ["-i", str(i), "-a", addresses] for i in range(workers)]
    processes = [subprocess.Popen(commands[0], env=env, cwd=ROOT, stderr=stderr)]
    if workers > 1 and not separate:
        # The others connect to process 0, and timely retries a refused connection only after a
        # second: start them once it listens.
        _wait_listening(FIRST_PORT, processes[0])
    processes += [subprocess.Popen(c, env=env, cwd=ROOT, stderr=stderr) for c in commands[1:]]
    return processes


def measure(
    name: str, kinds: list[Kind], records: int, settings: Settings, empty: Settings, repeat: int, speeds: list[float]
) -> list[Run]:
    """The median run of each kind (`kinds_of`, with and without recovery, or in each order), each with its median
    start-up.

    Rounds alternate the kinds of run (and a host speed check), so that a slower spell of this
    machine, which shares its host, falls on both sides of a comparison rather than on one.
    """
    done: list[list[Run]] = [[] for _ in kinds]  # by the kind's place in `kinds`
    startups: list[list[Run]] = [[] for _ in kinds]
    for _ in range(repeat):
        speeds.append(host_speed())
        for n, kind in enumerate(kinds):
            done[n].append(
                run_dataflow(name, kind.workers, records, settings, kind.separate, kind.delivery, kind.order)
            )
            startups[n].append(run_dataflow(name, kind.workers, 0, empty, kind.separate, kind.delivery, kind.order))
    medians = []
    for runs, empties in zip(done, startups, strict=True):
        run, startup = median_run(runs), median_run(empties)
        run.startup, run.startup_cpu = startup.seconds, startup.cpu
        run.records_cpu = statistics.median(r.cpu for r in runs) - statistics.median(r.cpu for r in empties)
        medians.append(run)
    return medians


def host_speed() -> float:
    """CPU seconds a fixed pure-Python loop takes now: how fast this machine is at the moment."""
    started, total = time.thread_time(), 0
    for n in range(2_000_000):
        total += n
    return time.thread_time() - started


def median_run(runs: list[Run]) -> Run:
    """The run of median duration (of an odd number): one real run, not a blend of several."""
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def local_broker(settings: Settings) -> int | None:
    """The process id of the broker `make kafka-up` started, if the bench runs on it (its CPU time counts)."""
    if local_port(settings.bootstrap_servers) is None:
        return None
    home = Path(os.environ.get("KAFKA_HOME_DIR", ROOT / ".kafka"))
    try:
        pid = int((home / "broker.pid").read_text())
        _cpu_seconds(pid)
    except (OSError, ValueError):
        return None
    return pid


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a running process, all its threads."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15


def _wait_listening(port: int, process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """Until a socket listens on this local port (read from /proc/net, so nothing connects to it)."""
    suffix, deadline = f":{port:04X}", time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as lines:
                next(lines)
                if any(f[1].endswith(suffix) and f[3] == "0A" for f in map(str.split, lines)):  # 0A: LISTEN
                    return
        time.sleep(0.01)


def _high_water_kb(pid: int) -> int:
    """VmHWM, the peak resident memory of this process image (ru_maxrss would count the parent's
    memory at fork time too). 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class StateSize(NamedTuple):
    """The states of one keyed step when its input ended: how many keys, and their pickled bytes in all."""

    dataflow: str
    state: str
    keys: int
    pickled: int

    @property
    def per_key(self) -> float:
        return self.pickled / max(self.keys, 1)


def state_sizes(sizes: Sizes, seed: int) -> list[StateSize]:
    """Every dataflow's keyed states at the end of a generated data set, run in this process on 1 worker.

    Pickled, as a recovery snapshot keeps them. A state per shard of customers (`HomeShard`,
    `Neighbours`, `GenreShard`) has one key per shard: its bytes per key are a shard's.
    """
    records = testing.kafka_records([generated.value for generated in generate(sizes, seed)])
    measured: list[StateSize] = []
    for name in dataflow_names():
        with states_at_end() as ended:
            testing.run(load_build(name)(testing.TestingIO(records)), 1)
        measured += [StateSize(name, state, keys, pickled) for state, (keys, pickled) in ended.items()]
    return measured


@contextmanager
def states_at_end() -> Iterator[dict[str, list[int]]]:
    """State class name -> [keys, pickled bytes] of each keyed step's shards as its input ends.

    Taken when a shard hears of the end, before what still waits leaves as dead letters.
    """
    ended: dict[str, list[int]] = {}
    on_eof = ShardLogic.on_eof

    def measured_on_eof(shard: ShardLogic) -> tuple[list[list[Out]], bool]:
        if shard.states:
            total = ended.setdefault(type(next(iter(shard.states.values()))).__name__, [0, 0])
            total[0] += len(shard.states)
            total[1] += len(snapshots.pickled(shard.states))
        return on_eof(shard)

    ShardLogic.on_eof = measured_on_eof  # type: ignore[method-assign, assignment]  # a measurement's hook, undone below
    try:
        yield ended
    finally:
        ShardLogic.on_eof = on_eof  # type: ignore[method-assign]


def dataflow_io(name: str, settings: Settings) -> KafkaIO:
    """The dataflow built on Kafka, to learn the topics it reads (`inputs`) and writes (`outputs`)."""
    io = KafkaIO(settings)
    importlib.import_module(module_of(name)).build(io)
    return io


READ_ONLY = "read_only"
"""The floor (utopia.tools.read_only): the streams topic read and decoded, nothing else."""


def module_of(name: str) -> str:
    return "utopia.tools.read_only" if name == READ_ONLY else f"dataflows.{name}"


def input_records(name: str, settings: Settings, counts: dict[str, int]) -> int:
    """How many records the topics this dataflow reads hold."""
    inputs = dataflow_io(name, settings).inputs
    return sum(counts[short] for short in INPUT_RECORDS if settings.topics.input(short) in inputs)


def report(
    consume: Limit,
    produce: Limit,
    runs: list[Run],
    states: list[StateSize],
    sizes: Sizes,
    partitions: int,
    repeat: int,
    speeds: list[float],
) -> str:
    cores = os.cpu_count() or 1
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`python -m utopia.tools.bench`) on this machine ({cores} cores, the broker "
        f"on the same machine). Each dataflow row is the run of median duration out of {repeat} (its start-up too), "
        "1 and 2 workers taking turns. The machine shares its host: a fixed pure-Python loop took "
        f"{min(speeds):.3f} to {max(speeds):.3f} CPU seconds during this bench, {max(speeds) / min(speeds) - 1:.0%} "
        "apart, so compare figures of one run rather than of two.",
        f"Input: {sizes.streams:,} streams, {sizes.tickets:,} tickets, {sizes.customers:,} customers, "
        f"{sizes.artists:,} artists, {sizes.events:,} events on the local broker ({partitions} partitions a topic).",
        "",
        "- **seconds**: wall time from launching the dataflow (`python -m bytewax.run`) to its exit at the end of "
        "the input; 2 workers are 2 processes (`-i`/`-a`).",
        "- **records/s**: the records of the topics the dataflow reads, divided by those seconds.",
        "- **output records**: the records the run wrote to its output topics (their watermarks), dead letters "
        "included.",
        f"- **vs in+out limit**: the seconds the plain client (the two raw rows: confluent-kafka with msgspec, one "
        "process, the dataflows' fetch and producer settings; the producer writes one of each kind of output record "
        f"in turn to a topic of {partitions} partitions) takes to read the input and write the outputs, divided by the "
        "run's seconds: input records / consume rate + output records / produce rate, over seconds. 1.00 is as fast "
        "as the plain client.",
        f"- **{READ_ONLY}**: the floor under every dataflow (utopia.tools.read_only): the streams topic read "
        "through the same source and decoded, with Bytewax, and nothing else. What a dataflow takes beyond it is its "
        "rules, the exchange between its steps, and its outputs.",
        "- **start-up**: the same run on empty input topics (process start, connecting, finding the end of "
        "every partition, shutdown). **records/s after start-up** divides by the seconds minus that.",
        "- **CPU s**: CPU time of the dataflow's processes (every thread, librdkafka's too) plus the local broker's "
        "during the run; **cores busy** is that divided by the seconds.",
        f"- **ceiling on {cores} cores**: how many times faster than the 1-worker run any run on more "
        "processes can be here. Each process starts as one worker does, and the CPU time of the records (the "
        "1-worker run's CPU s minus its start-up's; more processes only add the cost of exchanging them) at best "
        f"spreads evenly over the {cores} cores, which the broker shares: "
        f"1-worker seconds / (start-up s + records' CPU s / {cores}).",
        "",
        "| what | workers | input records | output records | seconds | start-up s | records/s | vs in+out limit "
        "| vs 1 worker | records/s after start-up | vs 1 worker after start-up | CPU s | cores busy | ceiling on "
        f"{cores} cores | peak RSS MB (per process) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {consume.what} | 1 | {consume.records:,} | | {consume.seconds:.2f} | | {consume.rate:,.0f} | 1.00 "
        "| | | | | | | |",
        f"| {produce.what} | 1 | | {produce.records:,} | {produce.seconds:.2f} | | {produce.rate:,.0f} | 1.00 "
        "| | | | | | | |",
    ]
    single = {r.dataflow: r for r in runs if r.workers == 1}
    for r in (r for r in runs if not r.separate):
        one = single[r.dataflow]
        speedup = f"{r.rate / one.rate:.2f}x" if r.workers > 1 else ""
        steady = f"{r.rate_after_startup / one.rate_after_startup:.2f}x" if r.workers > 1 else ""
        ceiling = f"{one.ceiling(cores):.2f}x" if r.workers > 1 else ""
        lines.append(
            f"| {r.dataflow} | {r.workers} | {r.records:,} | {r.outputs:,} | {r.seconds:.2f} | "
            f"{r.startup:.2f} | {r.rate:,.0f} | {r.vs_client_limit(consume, produce):.2f} | {speedup} | "
            f"{r.rate_after_startup:,.0f} | {steady} | {r.cpu:.2f} | {r.cores:.2f} | {ceiling} | "
            f"{r.peak_rss_mb:,.0f} |"
        )
    lines += cost_table(runs)
    lines += [
        "",
        "## State size",
        "",
        "Every keyed step's states when the input ends, pickled as a recovery snapshot keeps them, on a "
        "default-size data set (`utopia generate` without options) run in one process on 1 worker. A state "
        "kept per shard of customers has one key per shard (`UTOPIA_SHARDS`).",
        "",
        "| dataflow | state | keys | bytes per key |",
        "|---|---|---|---|",
    ]
    lines += [f"| {s.dataflow} | {s.state} | {s.keys:,} | {s.per_key:,.0f} |" for s in states]
    return "\n".join(lines) + "\n"


def cost_table(runs: list[Run]) -> list[str]:
    """CPU per record of 1 worker, of 2 connected processes, and of 2 separate 1-worker runs at once."""
    single = {r.dataflow: r for r in runs if r.workers == 1}
    others = sorted({r.workers for r in runs if r.workers > 1})
    header = ["dataflow", "1 worker"]
    for w in others:
        header += [f"{w} processes", f"{w} processes vs 1 worker", f"{w} separate 1-worker runs at once", "vs 1 worker"]
    lines = [
        "",
        "## Cost per record",
        "",
        "CPU seconds per million input records: the median CPU s of the repeated runs minus the median of their "
        "start-ups', the broker's included. "
        "**N processes** is one run over N connected processes (`-i`/`-a`), which split the partitions and send "
        "each record to the process that holds its key's state. **N separate 1-worker runs at once** are N "
        "unconnected runs, each of the whole input, at the same time: they exchange nothing, so what they cost "
        "above one worker alone is what busy processes cost each other on this machine (its cores, caches and the "
        "broker shared); the rest of the connected run's difference is the exchange.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, one in single.items():
        cells = [name, f"{one.cpu_per_million:.2f}"]
        for w in others:
            for separate in (False, True):
                run = next((r for r in runs if r.dataflow == name and r.workers == w and r.separate == separate), None)
                cells += (
                    ["", ""]
                    if run is None
                    else [f"{run.cpu_per_million:.2f}", f"{run.cpu_per_million / one.cpu_per_million:.2f}x"]
                )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def empty_input(partitions: int) -> Settings:
    """Settings reading empty input topics (created if missing), to time start-up alone."""
    prefix = f"bench-empty-{partitions}p-data-demo-"
    empty = Settings.from_env(os.environ | {"UTOPIA_INPUT_PREFIX": prefix, "UTOPIA_TAIL": "false"})
    topics.create(empty, partitions, names=[empty.topics.input(n) for n in INPUT_RECORDS], quiet=True)
    return empty


def compared_rows(
    args: argparse.Namespace, kinds: list[Kind], row: Callable[[Run, Run], str], speeds: list[float]
) -> tuple[Sizes, list[str]]:
    """Every dataflow of `args` in two kinds of run (`measure`), as the rows `row` makes of their medians.

    The data set's sizes come along, for the section's heading; each row is printed as it comes.
    """
    sizes, settings, counts, empty = bench_world(args)
    rows = []
    for name in args.dataflows:
        first, second = measure(
            name, kinds, input_records(name, settings, counts), settings, empty, args.repeat, speeds
        )
        rows.append(row(first, second))
        print(rows[-1], file=sys.stderr)
    return sizes, rows


def bench_arguments(parser: argparse.ArgumentParser, repeat: int) -> None:
    """What every bench is told: which dataflows, the data set, how many runs of each kind, where to report."""
    parser.add_argument("--dataflows", nargs="*", default=dataflow_names(), help="default: all")
    parser.add_argument("--seed", type=int, default=1, help="of the generated data set")
    for field in WORLD_OPTIONS:
        parser.add_argument(
            f"--{field}",
            type=int,
            default=getattr(BENCH_SIZES, field),
            help="in the generated data set (default: %(default)s)",
        )
    parser.add_argument("--partitions", type=int, default=3, help="of every input topic (as `utopia topics create`)")
    parser.add_argument("--repeat", type=int, default=repeat, help="runs of each, the median reported (odd)")
    parser.add_argument("--report", type=Path, default=REPORT, help="the page written (default: docs/benchmarks.md)")


def check_bench_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.repeat < 1 or args.repeat % 2 == 0:
        parser.error("--repeat takes an odd number of runs, so that one of them is the median")
    if args.partitions < 1:
        parser.error("--partitions takes a positive number")
    for field in WORLD_OPTIONS:
        if getattr(args, field) < 1:
            parser.error(f"--{field} takes a positive number")
    unknown = sorted(set(args.dataflows) - set(dataflow_names()))
    if unknown:
        parser.error(f"no dataflow called {', '.join(unknown)}: choose among {', '.join(dataflow_names())}")


def bench_sizes(args: argparse.Namespace) -> Sizes:
    """The data set the options describe: the bench's own, with the sizes given changed."""
    return replace(BENCH_SIZES, **{field: getattr(args, field) for field in WORLD_OPTIONS})


SECTION = re.compile(r"<!-- (.+?): begin -->\n.*?<!-- \1: end -->\n", re.DOTALL)
"""A section another bench writes into the page (`write_section`), between its markers."""


def with_sections_kept(page: str, old: str) -> str:
    """The main bench's new page, followed by the sections the other benches wrote into the old one.

    `make bench` runs the main bench first; a bench run alone (`--dataflows`) keeps what the others measured.
    """
    return page.rstrip("\n") + "".join("\n\n" + m.group(0).rstrip("\n") for m in SECTION.finditer(old)) + "\n"


def write_section(report: Path, section: str, begin: str, end: str) -> None:
    """Put this section, which starts with `begin` and ends with `end`, in its place on the page, or at its end."""
    text = report.read_text() if report.exists() else ""
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    report.write_text(text)


def bench_world(args: argparse.Namespace) -> tuple[Sizes, Settings, dict[str, int], Settings]:
    """The data set the bench's arguments name, loaded into its topics unless they hold it already; the records
    of each input topic; and the empty topics whose runs measure a dataflow's start-up."""
    sizes = bench_sizes(args)
    settings = input_settings(sizes, args.seed, args.partitions)
    return sizes, settings, load(settings, sizes, args.seed, args.partitions), empty_input(args.partitions)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m utopia.tools.bench", description=__doc__.splitlines()[0])
    bench_arguments(parser, repeat=5)
    parser.add_argument("--workers", nargs="*", type=int, default=[1, 2], help="processes per run (must include 1)")
    args = parser.parse_args()
    check_bench_arguments(parser, args)
    if 1 not in args.workers:
        parser.error("--workers must include 1: the other runs are compared with it")
    sizes, settings, counts, empty = bench_world(args)
    consume, produce = raw_consume(settings), raw_produce(settings, sizes.streams, args.partitions)
    print(f"raw limit: {consume.rate:,.0f} records/s read, {produce.rate:,.0f} written", file=sys.stderr)
    runs: list[Run] = []
    speeds: list[float] = []
    for name in [READ_ONLY, *args.dataflows]:
        records = input_records(name, settings, counts)
        kinds = kinds_of([1] if name == READ_ONLY else args.workers)
        for run in measure(name, kinds, records, settings, empty, args.repeat, speeds):
            kind = f"{run.workers} separate" if run.separate else f"x{run.workers}"
            print(
                f"{name} {kind}: {run.cpu_per_million:.2f} CPU s per million records; {run.rate:,.0f} records/s "
                f"({run.rate_after_startup:,.0f} after {run.startup:.2f}s start-up), {run.outputs:,} written, "
                f"{run.vs_client_limit(consume, produce):.2f}x the in+out limit, {run.cores:.2f} cores busy, "
                f"{run.peak_rss_mb:,.0f} MB",
                file=sys.stderr,
            )
            runs.append(run)
    states = state_sizes(Sizes(), args.seed)
    page = report(consume, produce, runs, states, sizes, args.partitions, args.repeat, speeds)
    args.report.write_text(with_sections_kept(page, args.report.read_text() if args.report.exists() else ""))
    print(f"wrote {args.report}", file=sys.stderr)


if __name__ == "__main__":
    main()
