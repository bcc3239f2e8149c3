"""How a dataflow process runs: worker threads keep their Python thread state, the planned worker count, scheduling."""

import argparse
import importlib.machinery
import os
import subprocess
import sys
import threading
import types

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, cluster_main

from utopia.io.file_io import JsonlSink
from utopia.io.runtime import workers_across_processes


def test_a_worker_thread_keeps_its_thread_locals_between_calls(tmp_path):
    """Bytewax's worker threads are started from Rust; without a kept thread state each call into
    Python makes a new one (slow), and a `threading.local` set in one call is gone in the next."""
    per_thread, counts = threading.local(), []

    def count(item: int) -> bool:
        per_thread.calls = getattr(per_thread, "calls", 0) + 1
        counts.append((threading.get_ident(), per_thread.calls))
        return False  # nothing to write

    flow = Dataflow("thread_state")
    items = op.input("items", flow, TestingSource(list(range(20)), batch_size=1))
    op.output("out", op.filter("count", items, count), JsonlSink(tmp_path, "out"))  # utopia's sink keeps the state
    cluster_main(flow, [], 0, worker_count_per_proc=2)

    last = {}
    for thread, calls in counts:
        last[thread] = calls
    assert sum(last.values()) == 20  # every call of a thread saw the count of its earlier calls


class BytewaxRun(types.ModuleType):
    """`python -m bytewax.run` as the `__main__` module, with the arguments it was given."""

    def __init__(self, **args):
        super().__init__("__main__")
        self.__spec__ = importlib.machinery.ModuleSpec("bytewax.run", None)
        self._args = argparse.Namespace(
            **{
                "addresses": None,
                "workers_per_process": None,
                "process_id": None,
                "recovery_directory": None,
                "snapshot_interval": None,
            }
            | args
        )

    def _parse_args(self):
        return self._args


@pytest.mark.parametrize(
    "args, workers",
    [
        ({}, 1),
        ({"workers_per_process": 3}, 1),  # one process: nothing crosses, no bundles
        ({"addresses": "localhost:2101;localhost:2102"}, 2),
        ({"addresses": "a:1;b:1;c:1", "workers_per_process": 2}, 6),
    ],
)
def test_bundles_are_planned_for_the_workers_of_several_processes(monkeypatch, args, workers):
    monkeypatch.setitem(sys.modules, "__main__", BytewaxRun(**args))
    assert workers_across_processes() == workers


def test_outside_bytewax_run_no_bundles_are_planned():
    assert workers_across_processes() == 1  # pytest's own __main__


SCHEDULING = """
import os, threading
from utopia.io.runtime import favour_throughput, set_up_worker_thread
{before}
favour_throughput()
policies = {{}}
def worker():  # as Bytewax starts a worker thread: from the main thread, after the dataflow is built
    policies["worker"] = os.sched_getscheduler(0)
    set_up_worker_thread()
thread = threading.Thread(target=worker)
thread.start()
thread.join()
names = {{os.SCHED_OTHER: "other", os.SCHED_BATCH: "batch", os.SCHED_IDLE: "idle"}}
print(names[policies["worker"]], names[os.sched_getscheduler(0)])
"""


def policies_of_a_run(before: str = "") -> list[str]:
    """The scheduling policies of a worker thread and of the main thread, in a process of its own."""
    done = subprocess.run(
        [sys.executable, "-c", SCHEDULING.format(before=before)], capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def test_a_dataflow_process_runs_its_workers_for_throughput_and_its_main_thread_when_a_core_is_idle():
    assert policies_of_a_run() == ["batch", "idle"]


def test_a_process_started_under_another_policy_is_left_as_it_is():
    assert policies_of_a_run("os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))") == ["idle", "idle"]
    assert policies_of_a_run("os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))") == ["batch", "batch"]


def test_workers_in_a_process_that_does_other_work_leave_its_scheduling_alone(tmp_path):
    """The tests run dataflows on worker threads too: the test process keeps its policy."""
    before = os.sched_getscheduler(0)
    flow = Dataflow("scheduling")
    op.output("out", op.input("items", flow, TestingSource([("k", {"n": 1})])), JsonlSink(tmp_path, "out"))
    cluster_main(flow, [], 0, worker_count_per_proc=2)
    assert os.sched_getscheduler(0) == before == os.SCHED_OTHER


ARENAS_AFTER_THREADS_ALLOCATE = """
import ctypes, sys, threading
from utopia.io.runtime import limit_malloc_arenas
if sys.argv[1] == "limited":
    limit_malloc_arenas()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
started = threading.Barrier(6)
def allocate():
    started.wait()
    for _ in range(100):
        libc.malloc(1000)
threads = [threading.Thread(target=allocate) for _ in range(6)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc.malloc_stats()  # one "Arena N:" paragraph per pool, on stderr
"""


@pytest.mark.parametrize("how", ["limited", "default"])
def test_a_kafka_process_keeps_at_most_two_malloc_pools_however_many_threads_allocate(how):
    env = {name: value for name, value in os.environ.items() if name != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", ARENAS_AFTER_THREADS_ALLOCATE, how], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    arenas = done.stderr.count("Arena ")
    assert (arenas == 2) if how == "limited" else (arenas > 2), done.stderr  # glibc: up to 8 per core
