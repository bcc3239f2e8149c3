"""`make instructions`: CPU instructions per input record of each dataflow, counted by valgrind.

This machine shares its host, so wall and CPU times drift by tens of percent from one minute to the
next (`make bench` reports how much); instruction counts do not, which makes them the measure for a
change of a few percent. Each dataflow runs in this process's Python on a fixed generated input
(TestingIO, batches of 1000 records as a Kafka poll gives, changelogs flushed once at the end) under
`valgrind --tool=cachegrind`, once whole and once stopping before the run; the difference divided
by the input records is the figure. It covers decoding, keyed state and outputs, not librdkafka.

With `--crossing`, the figure is what sending a keyed step's records to another process costs
(`utopia/steps/wire.py`): the dataflow runs on 2 workers in this process, every bundle they make
for a worker is kept (a 2-process run sends about half of them across; their raw records become the
Kafka messages a Kafka run has), and the instructions of encoding and decoding them are divided by
the records they carry. Bytewax's own transport
(a pickle of the bytes, a message) is not counted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from utopia.cli import dataflow_names
from utopia.io.runtime import plan_workers, relax_garbage_collector
from utopia.io.testing import TestingIO, kafka_records, run, with_kafka_messages
from utopia.steps import engine
from utopia.tools.generator import Sizes, generate

SIZES = Sizes(customers=20_000, artists=400, events=400, tickets=20_000, streams=100_000)
SEED = 1


def count(name: str, data_file: Path, run_it: bool, crossing: bool = False) -> tuple[int, int]:
    """(instructions, input records or crossing records) of one valgrind run of a child below."""
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "utopia.tools.instructions",
        "--child",
        name,
        str(data_file),
    ]
    if not run_it:
        command.append("--build-only")
    if crossing:
        command.append("--crossing")
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"PYTHONHASHSEED": "0"})
    refs = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    inputs = re.search(r"^(?:input|crossing) records: (\d+)$", done.stderr, re.MULTILINE)
    if done.returncode != 0 or not refs or not inputs:
        raise SystemExit(f"{name} under valgrind failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return int(refs.group(1).replace(",", "")), int(inputs.group(1))


def child(name: str, records_file: Path, build_only: bool) -> None:
    records = pickle.loads(records_file.read_bytes())
    io = TestingIO(records, batch_size=1000)
    io.changelog = timedelta(hours=1)
    flow = importlib.import_module(f"dataflows.{name}").build(io)
    print(f"input records: {sum(r.topic in io.inputs for r in records)}", file=sys.stderr)
    relax_garbage_collector()  # as a Kafka run does
    if not build_only:
        run(flow)


def crossing_bundles(name: str, records: list) -> list[list]:
    """The bundles a 2-worker run of the dataflow makes, as plain lists (a 2-process run sends about half across)."""
    kept: list[engine._Bundle] = []

    class Kept(engine._Bundle):
        __slots__ = ()

        def __init__(self, *args):
            super().__init__(*args)
            kept.append(self)

    made, engine._Bundle = engine._Bundle, Kept  # type: ignore[misc]  # patched to keep what crosses
    plan_workers(2)  # as `python -m bytewax.run` says for 2 processes: one bundle per worker and batch
    try:
        io = TestingIO(records, batch_size=1000)
        io.changelog = timedelta(hours=1)
        run(importlib.import_module(f"dataflows.{name}").build(io), 2)
    finally:
        engine._Bundle = made  # type: ignore[misc]
        plan_workers(1)
    return [list(bundle) for bundle in kept if bundle]


def crossing_child(bundles_file: Path, build_only: bool) -> None:
    """Encode and decode the bundles (`--crossing`), their raw records as the Kafka messages a Kafka run has.

    The first half is encoded in both runs of a dataflow, so that the first run of each shape, which
    is checked (utopia.steps.wire), is not counted: the figure is the second half's.
    """
    from utopia.steps import wire

    sent = [
        [(shard, [(key, with_kafka_messages(value)) for key, value in pairs]) for shard, pairs in bundle]
        for bundle in pickle.loads(bundles_file.read_bytes())
    ]
    warm, counted = sent[: len(sent) // 2], sent[len(sent) // 2 :]
    print(f"crossing records: {sum(len(pairs) for bundle in counted for _, pairs in bundle)}", file=sys.stderr)
    relax_garbage_collector()  # as a Kafka run does
    for bundle in warm if build_only else sent:
        wire.decode(wire.encode(bundle))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m utopia.tools.instructions", description=__doc__.splitlines()[0])
    parser.add_argument("--dataflows", nargs="*", default=dataflow_names(), help="default: all")
    parser.add_argument("--child", nargs=2, metavar=("DATAFLOW", "RECORDS"), help=argparse.SUPPRESS)
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--crossing",
        action="store_true",
        help="per record a worker sends to another (utopia/steps/wire.py), not per input record",
    )
    args = parser.parse_args()
    if args.child:
        if args.crossing:
            crossing_child(Path(args.child[1]), args.build_only)
        else:
            child(args.child[0], Path(args.child[1]), args.build_only)
        return
    if shutil.which("valgrind") is None:
        sys.exit("utopia: valgrind is not installed (Debian: apt-get install valgrind)")
    records = kafka_records(g.value for g in generate(SIZES, SEED))
    with tempfile.TemporaryDirectory() as directory:
        records_file = Path(directory) / "records.pickle"
        records_file.write_bytes(pickle.dumps(records))
        counted = "records crossing" if args.crossing else "input records"
        print(f"| dataflow | {counted} | instructions per record |\n|---|---|---|")
        for name in args.dataflows:
            data_file = records_file
            if args.crossing:  # made here, not under valgrind: which bundles 2 threads make varies a little
                data_file = Path(directory) / f"{name}.bundles.pickle"
                data_file.write_bytes(pickle.dumps(crossing_bundles(name, records)))
            whole, inputs = count(name, data_file, run_it=True, crossing=args.crossing)
            built, _ = count(name, data_file, run_it=False, crossing=args.crossing)
            print(f"| {name} | {inputs:,} | {(whole - built) / max(inputs, 1):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
