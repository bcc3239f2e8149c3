"""Reading Bytewax's recovery store: what a resume would start from, as it is written.

Exactly-once output (utopia.io.transactions) commits a Kafka transaction only once a resume would
load the snapshot that holds the transaction's records, so it asks the store what Bytewax itself
asks when it resumes. The store is Bytewax 0.21.1's (src/recovery.rs): SQLite files
`part-N.sqlite3` in the recovery directory, in WAL mode, so they can be read while Bytewax writes
them, but only from another process once Bytewax has them open (`watch`): Bytewax's SQLite and
Python's are two copies, which break each other's locks within one process. Its tables `exs` (one
row per execution), `fronts` (how far each worker got) and `snaps` (pickled states by step, key and
epoch) are sharded over the files, so every file is read, and a directory that lacks some (a
process's own disk) is not read as a whole store.
`tests/test_recovery_store.py` checks these readings against a store Bytewax wrote.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

WATCH_INTERVAL_S = 0.05
"""How often `watch` reads the store: at most this much latency added to an exactly-once output."""


class Execution(NamedTuple):
    number: int
    worker_count: int
    resume_epoch: int


class RecoveryStore:
    """The recovery partitions of one directory, opened (read-only unless asked) on the thread that makes this."""

    def __init__(self, directory: Path, writable: bool = False):
        self.files = sorted(Path(directory).glob("part-*.sqlite3"))
        mode = "rw" if writable else "ro"
        self.connections = [sqlite3.connect(f"file:{file}?mode={mode}", uri=True, timeout=5) for file in self.files]

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

    def _all(self, query: str, parameters: tuple = ()) -> list[tuple]:
        return [row for connection in self.connections for row in connection.execute(query, parameters)]

    def complete(self) -> bool:
        """Whether this directory holds every partition of the store (`parts` says how many there are)."""
        rows = self._all("SELECT part_index, part_count FROM parts")
        return bool(rows) and {index for index, _ in rows} == set(range(rows[0][1]))

    def last_execution(self) -> Execution | None:
        """The newest execution: the running one, or the one a resume follows."""
        rows = self._all("SELECT ex_num, worker_count, resume_epoch FROM exs")
        return Execution(*max(rows)) if rows else None

    def resume_epoch(self) -> int | None:
        """The epoch a resume would start from now: Bytewax's `resume_from`, over every file.

        Each worker of the newest execution has got as far as its newest front, or the execution's
        own resume epoch if it wrote none yet; a resume starts where the slowest worker is, and
        loads every state snapshotted before that epoch.
        """
        execution = self.last_execution()
        if execution is None:
            return None
        reached = dict.fromkeys(range(execution.worker_count), execution.resume_epoch)
        for worker, front in self._all(
            "SELECT worker_index, MAX(worker_frontier) FROM fronts WHERE ex_num = ? GROUP BY worker_index",
            (execution.number,),
        ):
            reached[worker] = max(reached.get(worker, front), front)
        return min(reached.values())

    def state_before(self, step_id: str, key: str, epoch: int) -> Any:
        """The state of `key` in step `step_id` that a resume at `epoch` loads (None if there is none)."""
        rows = self._all(
            "SELECT snap_epoch, ser_change FROM snaps WHERE step_id = ? AND state_key = ? "
            "AND snap_epoch < ? ORDER BY snap_epoch DESC LIMIT 1",
            (step_id, key, epoch),
        )
        if not rows:
            return None
        _, change = max(rows, key=lambda row: row[0])
        return None if change is None else pickle.loads(change)

    def states_before(self, step_id: str, epoch: int) -> dict[str, Any]:
        """Every key's state in step `step_id` that a resume at `epoch` loads (keys with none left out)."""
        rows = self._all(
            "SELECT state_key, snap_epoch, ser_change FROM snaps WHERE step_id = ? AND snap_epoch < ?", (step_id, epoch)
        )
        latest = {key: change for key, _, change in sorted(rows, key=lambda row: row[1])}
        return {key: pickle.loads(change) for key, change in latest.items() if change is not None}

    def forget_unfinished(self) -> int:
        """Delete the snapshots of the resume epoch and later: a crashed run's last ones. How many.

        A run killed after writing some of an epoch's snapshots, but before every worker finished the
        epoch, leaves them in the store, and the resumed run numbers its epochs from the resume epoch
        again. A key it does not touch in that epoch keeps the dead run's snapshot, and the next resume
        loads it as the newest: the state of records that were never all processed. Bytewax 0.21.1
        does not remove them (src/recovery.rs); here they go before it opens the store. Only with every
        partition at hand: from some of them, the resume epoch could read too early.
        """
        epoch = self.resume_epoch() if self.complete() else None
        if epoch is None:
            return 0
        deleted = 0
        for connection in self.connections:
            with connection:
                deleted += connection.execute("DELETE FROM snaps WHERE snap_epoch >= ?", (epoch,)).rowcount
        return deleted

    def forget_steps(self, step_ids: list[str]) -> None:
        """Delete every snapshot of these steps."""
        for connection in self.connections:
            with connection:
                connection.executemany("DELETE FROM snaps WHERE step_id = ?", [(step_id,) for step_id in step_ids])


def resume_line(directory: Path, input_steps: list[str]) -> str:
    """What a run with this store starts from, in one line: a new store, or the snapshot it resumes and how far the
    inputs got (the sum of the partitions' snapshotted offsets: the records read before, retention aside)."""
    store = RecoveryStore(directory)
    try:
        epoch = store.resume_epoch()
        if epoch is None:
            return f"recovery: {directory} is a new store: the run starts at UTOPIA_START_OFFSET"
        offsets = [
            offset
            for step_id in input_steps
            for state in store.states_before(step_id, epoch).values()
            for offset in _offsets(state)
        ]
    finally:
        store.close()
    return (
        f"recovery: resuming from {directory}, the snapshot before epoch {epoch}: "
        f"{len(offsets)} input partition(s) go on after {sum(offsets):,} records already done"
    )


def _offsets(state: Any) -> list[int]:
    """The offsets in a source partition's snapshot: its own, or every topic partition's (UTOPIA_ORDER=global)."""
    if isinstance(state, int):
        return [state]
    return list(state[0].values()) if isinstance(state[0], dict) else [state[0]]


def input_parts(directory: Path, input_steps: list[str]) -> set[str]:
    """The source partitions a resume from this store loads snapshots of (none for a new store)."""
    store = RecoveryStore(directory)
    try:
        epoch = store.resume_epoch()
        if epoch is None:
            return set()
        return {key for step_id in input_steps for key in store.states_before(step_id, epoch)}
    finally:
        store.close()


def watch(directory: Path) -> None:
    """For utopia.io.transactions, in a process of its own: how far the store holds each sink partition.

    Reads `step_id<TAB>part` lines on stdin, the partitions to follow; writes `step_id<TAB>part<TAB>n`
    whenever a resume would load a snapshot of that partition naming every transaction up to n.
    Ends when stdin does (the dataflow's process ended, however).
    """
    parts: dict[tuple[str, str], int] = {}
    lock = threading.Lock()

    def follow() -> None:
        for line in sys.stdin:
            step_id, part = line.rstrip("\n").split("\t")
            with lock:
                parts[step_id, part] = -1
        os._exit(0)

    threading.Thread(target=follow, daemon=True).start()
    store, last_epoch = RecoveryStore(directory), None
    while True:
        time.sleep(WATCH_INTERVAL_S)
        try:
            epoch = store.resume_epoch()
            with lock:
                followed = dict(parts)
            for (step_id, part), told in followed.items():
                if epoch is None or (epoch == last_epoch and told >= 0):
                    continue  # states before an epoch never change once a resume would start there
                state = store.state_before(step_id, part, epoch)
                durable = state[0] - 1 if state is not None else 0
                if durable != told:
                    print(f"{step_id}\t{part}\t{durable}", flush=True)
                with lock:
                    parts[step_id, part] = durable
        except sqlite3.OperationalError:  # busy beyond its timeout while Bytewax writes: read it again next time
            continue
        last_epoch = epoch


if __name__ == "__main__":
    watch(Path(sys.argv[1]))
