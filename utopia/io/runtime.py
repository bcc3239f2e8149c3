"""Process-wide settings for a dataflow run, and what each worker thread sets up for itself."""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import threading
from pathlib import Path
from typing import NamedTuple

GC_THRESHOLDS = (50_000, 20, 100)
"""CPython's defaults are (700, 10, 10)."""


def relax_garbage_collector() -> None:
    """Run CPython's cycle collector far less often than its defaults.

    A dataflow allocates millions of short-lived tuples and lists while it keeps state objects for
    hundreds of thousands of keys; with the default thresholds the collector keeps re-scanning
    them, about a quarter of the run time of top_customer_artists (measured by `make bench`).
    Nothing here makes reference cycles per record, so collecting rarely costs little memory.
    `freeze` moves what exists at start (modules, classes) out of every later scan.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


MALLOC_ARENAS = 2
"""glibc's memory pools a Kafka-mode process may use; by default up to 8 per core, one per thread that allocates."""
_M_ARENA_MAX = -8
"""glibc's `mallopt` parameter for it (malloc.h)."""


def limit_malloc_arenas() -> None:
    """Let glibc's malloc keep at most `MALLOC_ARENAS` pools, unless MALLOC_ARENA_MAX says otherwise.

    Every librdkafka client has threads of its own (a dataflow has a consumer per input partition
    and a producer per output and worker), and glibc gives each allocating thread a pool, up to 8
    per core; the memory freed in each stays with it. suggested_events_location on the bench's data
    set, 1 worker through the local broker, peaked at 457 MB of RSS with the default and 379 MB
    with 2 pools (docs/performance.md). Called before any client starts; nothing happens on a
    system without glibc.
    """
    if "MALLOC_ARENA_MAX" in os.environ:  # glibc read it at start
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def favour_throughput() -> None:
    """Schedule this thread, and every thread it starts from now on, for throughput: Linux's SCHED_BATCH.

    A dataflow's threads wake one another thousands of times a second: timely's network threads
    when a message goes out or comes in, librdkafka's on every fetch, Bytewax's main thread every
    millisecond. Under the default policy each wake-up may take the core from a busy worker on the
    spot, and every switch costs the worker its caches. SCHED_BATCH (`man 7 sched`) is Linux's
    policy for non-interactive work: its threads do not preempt a running thread when they wake.
    With this and `quiet_main_thread`, the worker threads of a 2-process sold_out run were
    preempted 3,644 times instead of 24,306 (docs/performance.md). A process started under
    another policy (`chrt`) is left as it is, and so is any system other than Linux or one that
    refuses; `nice` is kept.
    Only for a process that does nothing but run the dataflow (`bytewax.run`, `utopia run`), never
    for one that runs dataflows among other work, such as the tests.
    """
    global _dedicated
    try:
        if hasattr(os, "SCHED_BATCH") and os.sched_getscheduler(0) == os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
            _dedicated = True
    except OSError:  # a sandbox that refuses: the run goes on as scheduled
        pass


_dedicated = False
"""Whether `favour_throughput` scheduled this process for a dataflow run."""


def set_up_worker_thread() -> None:
    """What a worker sets up on its own thread, once, before any record (every sink's `build` calls it)."""
    keep_thread_state()
    quiet_main_thread()


def quiet_main_thread() -> None:
    """When workers run on threads of their own, let the main thread run only on an idle core (SCHED_IDLE).

    With several workers Bytewax's main thread only waits for them: every millisecond it wakes,
    takes the GIL from a worker and checks for signals (src/run.rs, v0.21.1), so the worker stops
    and the two threads switch twice. As an idle-policy thread it still runs whenever a core has
    nothing else to do, which is soon enough to notice Ctrl-C, SIGTERM and the end of the run, but
    it no longer interrupts busy workers. With one worker, the worker is the main thread and
    nothing changes; nor in a process `favour_throughput` was not called in.
    """
    main = threading.main_thread()
    if _dedicated and threading.current_thread() is not main and main.native_id is not None:
        try:
            os.sched_setscheduler(main.native_id, os.SCHED_IDLE, os.sched_param(0))
        except OSError:  # a sandbox that refuses: the run goes on as scheduled
            pass


_kept = threading.local()


def keep_thread_state() -> None:
    """Keep this thread's Python thread state until the process ends (once per thread).

    With several workers (`-w N`, or processes with `-i`/`-a`) Bytewax runs each worker on a thread
    started from Rust, and every call into Python takes the GIL with `PyGILState_Ensure`. A thread
    Python did not start has no thread state of its own, so each such call made one and freed it
    on release: a `gettid`, and a frame stack mapped and unmapped (unmapping interrupts every core
    to flush its address cache). On sold_out with 2 processes that was about 85,000 mmap/munmap
    pairs per process and twice the CPU of one worker for the same records; one worker runs on
    Python's main thread, which keeps its state. Taking the thread state once more and never
    giving it back keeps it alive, so later calls only swap it in. The cost: a few kilobytes per
    worker thread, kept after the thread ends.
    """
    if not getattr(_kept, "done", False):
        ctypes.pythonapi.PyGILState_Ensure()  # with no release, on purpose
        _kept.done = True


_planned_workers = 1


def plan_workers(count: int) -> None:
    """Say how many workers the dataflows built next in this process will share their keyed steps with.

    Keyed steps built for several workers send what one worker has for another in one bundle per
    batch (utopia.steps): fewer, larger messages between processes. A wrong count costs only that
    saving; a shard's records still always reach the same worker.
    """
    global _planned_workers
    _planned_workers = count


def planned_workers() -> int:
    """The count `plan_workers` last set: 1 unless a run said otherwise."""
    return _planned_workers


def workers_across_processes() -> int:
    """The workers of this `python -m bytewax.run` run in all if they are in several processes (`-a`), else 1.

    Within one process nothing is pickled, and bundles would only add a step. 1 outside `bytewax.run`.
    """
    flags = run_flags()
    return flags.workers if flags is not None and flags.processes > 1 else 1


class RunFlags(NamedTuple):
    """What `python -m bytewax.run` was asked for: recovery directory, snapshot interval, worker layout."""

    recovery_directory: Path | None
    snapshot_seconds: float | None
    process_id: int
    processes: int
    workers_per_process: int

    @property
    def workers(self) -> int:
        return self.processes * self.workers_per_process


def run_flags() -> RunFlags | None:
    """The flags of this process's `python -m bytewax.run`, read with Bytewax's own parser; None outside it."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if main is None or spec is None or spec.name != "bytewax.run":
        return None
    args = main._parse_args()
    addresses = [address for address in (args.addresses or "").split(";") if address.strip()]
    interval = args.snapshot_interval.total_seconds() if args.snapshot_interval is not None else None
    return RunFlags(
        args.recovery_directory, interval, args.process_id or 0, max(len(addresses), 1), args.workers_per_process or 1
    )
