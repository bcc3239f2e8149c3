"""A sink with one partition per worker, so that Bytewax tells each worker when an epoch's outputs are all written.

Bytewax writes an epoch to its recovery store once every snapshot of the epoch is written, and
only stateful sinks take part: their partitions' snapshots come after the epoch's last
`write_batch` (src/recovery.rs, v0.21.1: "we do not have to monitor output progress" of other
sinks). A `DynamicSink` can therefore lag behind the store, and it never learns where an epoch
ends. A `FixedPartitionedSink` with a partition on each worker learns both, and costs no
exchange: each worker's outputs are keyed by its own partition.
"""

from __future__ import annotations

import threading
from typing import Any

from bytewax.outputs import FixedPartitionedSink

from utopia.io.runtime import RunFlags, set_up_worker_thread


class PerWorkerSink(FixedPartitionedSink):
    """Items are whole batches of output records keyed by the partition of the worker that made them.

    Bytewax asks each worker for its partitions once, on the worker's own thread, as it builds the
    dataflow: the n-th to ask in process p gets partition `p-n`, whose place in the sorted list of
    all partitions is `p * workers_per_process + n`, so every item stays on its worker.
    """

    def __init__(self, flags: RunFlags):
        self.flags = flags
        self._asked = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    def list_parts(self) -> list[str]:
        set_up_worker_thread()  # keeps the thread's state, and so `_local`, between Bytewax's calls
        with self._lock:
            n, self._asked = self._asked, self._asked + 1
        self._local.part = f"{self.flags.process_id:03d}-{n:03d}"
        return [self._local.part]

    def part_fn(self, item_key: str) -> int:
        process, n = item_key.split("-")
        return int(process) * self.flags.workers_per_process + int(n)

    def items_of(self, batch: list[Any]) -> list[tuple[str, list[Any]]]:
        """A batch of output records as one item, for this worker's partition."""
        return [(self._local.part, batch)] if batch else []
