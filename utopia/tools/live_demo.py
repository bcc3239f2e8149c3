"""`utopia live-demo` / `make live-demo`: a live feed, every dataflow on it, and the dashboard, stopped together.

The feed (`utopia generate --to kafka --live`) and the dataflows run in the background, each in a
session of its own so that the terminal's Ctrl-C reaches only this process: it then stops them
itself, gracefully (SIGINT, which a dataflow takes as a stop, docs: README's Stopping) and, after
STOP_GRACE_S or a second Ctrl-C, at once. Their output goes to LOG_DIR/<name>.log, not under the
dashboard.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from utopia.cli import dataflow_names
from utopia.config import Settings
from utopia.io.topics import create
from utopia.tools.watch import KafkaOutputs, watch

LOG_DIR = Path(".live-demo")
STOP_GRACE_S = 15.0
FEED = "generate"


def commands(rate: float, feed: bool = True) -> dict[str, list[str]]:
    """What runs in the background, by name: the live feed (unless the inputs are fed already) and every
    dataflow, as a user starts them."""
    generate = [sys.executable, "-m", "utopia.cli", "generate", "--to", "kafka", "--live", "--rate", f"{rate:g}"]
    flows = {name: [sys.executable, "-m", "bytewax.run", f"dataflows.{name}"] for name in dataflow_names()}
    return ({FEED: generate} if feed else {}) | flows


def start(name: str, command: list[str], log_dir: Path) -> subprocess.Popen:
    with (log_dir / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(processes: dict[str, subprocess.Popen], grace_s: float = STOP_GRACE_S) -> None:
    """SIGINT to each process group, then SIGKILL to those still there after `grace_s` or at a second Ctrl-C."""
    for process in processes.values():
        _signal(process, signal.SIGINT)
    try:
        deadline = time.monotonic() + grace_s
        for process in processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    finally:
        for process in processes.values():
            _signal(process, signal.SIGKILL)
            process.wait()


def _signal(process: subprocess.Popen, number: signal.Signals) -> None:
    """To the whole session it leads, while it runs (once reaped, its id may be another's)."""
    if process.poll() is None:
        os.killpg(process.pid, number)


def _interrupt(number: int, frame) -> None:
    raise KeyboardInterrupt


def stopped(processes: dict[str, subprocess.Popen], log_dir: Path) -> list[str]:
    """A line for each process that ended on its own: the dashboard then says why numbers stop moving."""
    return [
        f"{name} stopped (exit code {process.returncode}): see {log_dir / f'{name}.log'}"
        for name, process in processes.items()
        if process.poll() is not None
    ]


def run(rate: float, log_dir: Path = LOG_DIR, feed: bool = True) -> None:
    settings = Settings.from_env()
    # Closing the terminal or `kill` stop all as Ctrl-C does. SIGINT too: a shell without job control starts
    # a command put in the background (`&`) with SIGINT ignored, and the live feed would inherit that.
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _interrupt)
    create(settings)  # every topic, so that the dataflows find theirs and the dashboard all outputs
    log_dir.mkdir(exist_ok=True)
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands(rate, feed).items():
            processes[name] = start(name, command, log_dir)
        started = f"the live feed at {rate:g} records/s and " if feed else ""
        print(
            f"started {started}{len(processes) - feed} dataflows; logs in {log_dir}/; Ctrl-C stops them all",
            file=sys.stderr,
        )
        watch(KafkaOutputs(settings), Console(), notes=lambda: stopped(processes, log_dir))
    except KeyboardInterrupt:
        pass  # the way a live demo ends: not a failure
    finally:
        print("stopping the feed and the dataflows ...", file=sys.stderr)
        stop(processes)
