"""`make bench`, delivery part: what exactly once costs beside at least once, per record and in latency.

- **CPU per record**: each dataflow with 1 worker through the local broker on the bench's data set,
  at least once without recovery, at least once with recovery every 10 s (`make <dataflow>
  RECOVERY=1`) and exactly once with the same: the median CPU seconds of `--repeat` runs less the
  median of their start-ups' (on empty topics), the broker's included, as the main bench counts.
- **Latency**: purchase_event_ticket tailing, tickets sent at a steady rate for a while; a ticket's
  delay is from its send to its response reaching a `read_committed` reader.

Writes its section of docs/benchmarks.md (between its markers), leaving the rest as it is.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import msgspec
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from utopia.config import Settings
from utopia.io import topics
from utopia.models import Event, Ticket
from utopia.tools.bench import (
    AT_LEAST_ONCE,
    PARTITION_ORDER,
    RECOVERY_EVERY_10_S,
    Delivery,
    bench_arguments,
    bench_world,
    check_bench_arguments,
    host_speed,
    input_records,
    run_dataflow,
    start_processes,
    write_section,
)

EVERY_10_S = RECOVERY_EVERY_10_S.recovery_flags
MODES = [
    AT_LEAST_ONCE,
    RECOVERY_EVERY_10_S,
    Delivery("exactly once, recovery every 10 s", {"UTOPIA_GUARANTEE": "exactly-once"}, EVERY_10_S),
]
LATENCY_MODES = [
    AT_LEAST_ONCE,
    RECOVERY_EVERY_10_S,
    Delivery("exactly once, recovery every 1 s", {"UTOPIA_GUARANTEE": "exactly-once"}, ("-s", "1", "-b", "1")),
    Delivery("exactly once, recovery every 10 s", {"UTOPIA_GUARANTEE": "exactly-once"}, EVERY_10_S),
]
BEGIN, END = "<!-- delivery bench: begin -->", "<!-- delivery bench: end -->"


def cpu_per_million(
    name: str, settings: Settings, empty: Settings, records: int, repeat: int, speeds: list[float]
) -> dict[str, float]:
    """CPU s per million input records of each mode; rounds alternate the modes, as the main bench's kinds."""
    cpus: dict[str, list[float]] = {mode.label: [] for mode in MODES}
    startups: dict[str, list[float]] = {mode.label: [] for mode in MODES}
    for _ in range(repeat):
        speeds.append(host_speed())
        for mode in MODES:
            cpus[mode.label].append(run_dataflow(name, 1, records, settings, delivery=mode).cpu)
            startups[mode.label].append(run_dataflow(name, 1, 0, empty, delivery=mode).cpu)
    return {
        label: max(statistics.median(cpus[label]) - statistics.median(startups[label]), 0.0) / records * 1e6
        for label in cpus
    }


def ticket_latency(
    mode: Delivery, seconds: float, rate: int, processes: int = 1, order: str = PARTITION_ORDER
) -> list[float]:
    """Seconds from sending each ticket to its response reaching a read_committed reader, tickets at `rate`/s, the
    dataflow on this many connected processes with its workers in this `UTOPIA_ORDER`."""
    prefix = f"bench-latency-{uuid.uuid4().hex[:6]}-"
    env = (
        os.environ
        | {
            "UTOPIA_INPUT_PREFIX": f"{prefix}data-demo-",
            "UTOPIA_OUTPUT_PREFIX": prefix,
            "UTOPIA_TAIL": "true",
            "UTOPIA_ORDER": order,
        }
        | mode.env
    )
    settings = Settings.from_env(env)
    made = topics.create(settings, partitions=3, quiet=True)
    producer = Producer(settings.kafka_config() | {"linger.ms": 0})
    tickets = settings.topics.input("tickets")
    for n in range(10):
        event = Event(f"e-{n}", artistid="a-1", venueid="v-1", capacity=10**9, eventdate="2027-01-01T20:00:00Z")
        producer.produce(settings.topics.input("events"), msgspec.json.encode(event), event.id)
    producer.flush()
    command = [sys.executable, "-m", "bytewax.run", "dataflows.purchase_event_ticket"]
    store = tempfile.TemporaryDirectory(prefix="bench-recovery-")
    if mode.recovery_flags:
        subprocess.run([sys.executable, "-m", "bytewax.recovery", store.name, "1"], check=True, capture_output=True)
        command += ["-r", store.name, *mode.recovery_flags]
    dataflow = start_processes(command, processes, env, stderr=subprocess.DEVNULL)
    reader = Consumer(
        settings.kafka_config()
        | {"group.id": f"{prefix}latency", "isolation.level": "read_committed", "enable.partition.eof": False}
    )
    responses = settings.topics.output("ticket-response")
    reader.assign([TopicPartition(responses, p, 0) for p in range(3)])
    sent: dict[str, float] = {}
    delays: list[float] = []

    def receive(wait: float) -> None:
        for message in reader.consume(1000, wait):
            error, key = message.error(), message.key()
            if error is None and key is not None:
                sent_at = sent.pop(key.decode(), None)
                if sent_at is not None:
                    delays.append(time.monotonic() - sent_at)
            elif error is not None and error.code() != KafkaError._PARTITION_EOF:
                raise SystemExit(f"reading {responses}: {error}")

    try:
        warm = "t-warm"  # the dataflow answers: its start-up is not latency
        sent[warm] = time.monotonic()
        producer.produce(tickets, msgspec.json.encode(Ticket(warm, customerid="c-0", eventid="e-0")), warm)
        producer.flush()
        deadline = time.monotonic() + 60
        while warm in sent and time.monotonic() < deadline:
            receive(0.1)
        delays.clear()
        started, n = time.monotonic(), 0
        while time.monotonic() - started < seconds:
            due = started + n / rate
            if time.monotonic() >= due:
                ticket = Ticket(f"t-{n}", customerid=f"c-{n % 100}", eventid=f"e-{n % 10}")
                sent[ticket.id] = time.monotonic()
                producer.produce(tickets, msgspec.json.encode(ticket), ticket.id)
                producer.poll(0)
                n += 1
            else:
                receive(min(max(due - time.monotonic(), 0.0), 0.01))
        producer.flush()
        deadline = time.monotonic() + 60
        while sent and time.monotonic() < deadline:
            receive(0.1)
    finally:
        stop(dataflow)
        reader.close()
        store.cleanup()
        topics.delete(settings, made)
    if sent:
        raise SystemExit(f"{mode.label}, {processes} process(es), {order} order: {len(sent)} ticket(s) never answered")
    return delays


def stop(processes: list[subprocess.Popen]) -> None:
    """Ctrl-C to every process of a tailing run, as a user stops it; killed if it has not stopped within a minute."""
    for process in processes:
        process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def latency_table(what: str, latencies: dict[str, list[float]]) -> list[str]:
    """The tickets' delays of each run, in seconds, by what tells the runs apart (`what`: its column's name)."""
    lines = [f"| {what} | tickets | median | 95th percentile | most |", "|---|---|---|---|---|"]
    for label, delays in latencies.items():
        lines.append(
            f"| {label} | {len(delays):,} | {statistics.median(delays):.3f} | {percentile(delays, 0.95):.3f} "
            f"| {max(delays):.3f} |"
        )
    return lines


def latency_bench_arguments(module: str, description: str) -> argparse.Namespace:
    """The arguments of a bench that also measures latency: every bench's, and how long tickets are sent, how fast."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    bench_arguments(parser, repeat=3)
    parser.add_argument("--seconds", type=float, default=30.0, help="of tickets sent, for the latency")
    parser.add_argument("--rate", type=int, default=200, help="tickets a second, for the latency")
    args = parser.parse_args()
    check_bench_arguments(parser, args)
    return args


def report(
    costs: dict[str, dict[str, float]],
    latencies: dict[str, list[float]],
    repeat: int,
    seconds: float,
    rate: int,
    speeds: list[float],
) -> str:
    labels = [mode.label for mode in MODES]
    lines = [
        BEGIN,
        "",
        "## Delivery guarantees",
        "",
        "Generated by `make bench` (`python -m utopia.tools.delivery_bench`). CPU seconds per million input records "
        f"with 1 worker: the median of {repeat} runs less the median of their start-ups', the broker's included; "
        "recovery's store is a new one for each run. A fixed pure-Python loop took "
        f"{min(speeds):.3f} to {max(speeds):.3f} CPU seconds meanwhile.",
        "",
        "| dataflow | " + " | ".join(labels) + " | exactly once vs at least once, both with recovery |",
        "|---|" + "---|" * (len(labels) + 1),
    ]
    for name, cost in costs.items():
        ratio = cost[labels[2]] / cost[labels[1]] if cost[labels[1]] else float("nan")
        lines.append(f"| {name} | " + " | ".join(f"{cost[label]:.2f}" for label in labels) + f" | {ratio:.2f}x |")
    lines += [
        "",
        f"Latency: purchase_event_ticket tailing, {rate} tickets/s for {seconds:.0f} s; a ticket's delay is "
        "from its send to its response reaching a `read_committed` reader (seconds).",
        "",
        *latency_table("delivery", latencies),
    ]
    return "\n".join(lines + ["", END]) + "\n"


def main() -> None:
    args = latency_bench_arguments("utopia.tools.delivery_bench", __doc__.splitlines()[0])
    sizes, settings, counts, empty = bench_world(args)
    speeds: list[float] = []
    costs = {}
    for name in args.dataflows:
        costs[name] = cpu_per_million(name, settings, empty, input_records(name, settings, counts), args.repeat, speeds)
        print(name, " ".join(f"{label}: {cost:.2f}" for label, cost in costs[name].items()), file=sys.stderr)
    latencies = {}
    for mode in LATENCY_MODES:
        latencies[mode.label] = ticket_latency(mode, args.seconds, args.rate)
        print(f"{mode.label}: median {statistics.median(latencies[mode.label]):.3f} s", file=sys.stderr)
    write_section(args.report, report(costs, latencies, args.repeat, args.seconds, args.rate, speeds), BEGIN, END)
    print(f"wrote its section of {args.report}", file=sys.stderr)


if __name__ == "__main__":
    main()
