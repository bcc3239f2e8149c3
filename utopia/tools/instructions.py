"""`make instructions`: CPU instructions per input record of each dataflow, counted by valgrind.

This machine shares its host, so wall and CPU times drift by tens of percent from one minute to the
next (`make bench` reports how much); instruction counts do not, which makes them the measure for a
change of a few percent. Each dataflow runs in this process's Python on a fixed generated input
(TestingIO, batches of 1000 records as a Kafka poll gives, changelogs flushed once at the end) under
`valgrind --tool=cachegrind`, once whole and once stopping before the run; the difference divided
by the input records is the figure. It covers decoding, keyed state and outputs, not librdkafka.
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
from utopia.io.runtime import relax_garbage_collector
from utopia.io.testing import TestingIO, kafka_records, run
from utopia.tools.generator import Sizes, generate

SIZES = Sizes(customers=20_000, artists=400, events=400, tickets=20_000, streams=100_000)
SEED = 1


def count(name: str, records_file: Path, run_it: bool) -> tuple[int, int]:
    """(instructions, input records) of one valgrind run of the child below."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               sys.executable, "-m", "utopia.tools.instructions", "--child", name, str(records_file)]
    if not run_it:
        command.append("--build-only")
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"PYTHONHASHSEED": "0"})
    refs = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    inputs = re.search(r"^input records: (\d+)$", done.stderr, re.MULTILINE)
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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m utopia.tools.instructions", description=__doc__.splitlines()[0])
    parser.add_argument("--dataflows", nargs="*", default=dataflow_names(), help="default: all")
    parser.add_argument("--child", nargs=2, metavar=("DATAFLOW", "RECORDS"), help=argparse.SUPPRESS)
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.build_only)
        return
    if shutil.which("valgrind") is None:
        sys.exit("utopia: valgrind is not installed (Debian: apt-get install valgrind)")
    records = kafka_records(g.value for g in generate(SIZES, SEED))
    with tempfile.TemporaryDirectory() as directory:
        records_file = Path(directory) / "records.pickle"
        records_file.write_bytes(pickle.dumps(records))
        print("| dataflow | input records | instructions per record |\n|---|---|---|")
        for name in args.dataflows:
            whole, inputs = count(name, records_file, run_it=True)
            built, _ = count(name, records_file, run_it=False)
            print(f"| {name} | {inputs:,} | {(whole - built) / inputs:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
