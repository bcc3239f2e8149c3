"""Worker threads keep their Python thread state: what a dataflow keeps per thread lasts between calls."""

import argparse
import importlib.machinery
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
        self._args = argparse.Namespace(**{"addresses": None, "workers_per_process": None} | args)

    def _parse_args(self):
        return self._args


@pytest.mark.parametrize("args, workers", [
    ({}, 1),
    ({"workers_per_process": 3}, 1),  # one process: nothing crosses, no bundles
    ({"addresses": "localhost:2101;localhost:2102"}, 2),
    ({"addresses": "a:1;b:1;c:1", "workers_per_process": 2}, 6),
])
def test_bundles_are_planned_for_the_workers_of_several_processes(monkeypatch, args, workers):
    monkeypatch.setitem(sys.modules, "__main__", BytewaxRun(**args))
    assert workers_across_processes() == workers


def test_outside_bytewax_run_no_bundles_are_planned():
    assert workers_across_processes() == 1  # pytest's own __main__
