"""Worker threads keep their Python thread state: what a dataflow keeps per thread lasts between calls."""

import threading

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, cluster_main

from utopia.io.file_io import JsonlSink


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
