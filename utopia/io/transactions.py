"""Exactly-once output (UTOPIA_GUARANTEE=exactly-once): Kafka transactions that follow Bytewax's recovery store.

Bytewax keeps a dataflow's state and input offsets in its recovery store, not in Kafka, so no Kafka
transaction can cover them (Kafka Streams and Quix Streams put their state in changelog topics
instead). What makes outputs exactly-once here is the order of two commits, and a way to redo the
second (docs/outputs.md#delivery):

1. Each worker writes each output topic through a transactional producer of its own (a partition
   of `TransactionalSink`), one transaction per snapshot interval (a Bytewax epoch). The records go
   to Kafka as they are made, inside the open transaction: invisible to `read_committed` readers.
2. The same records are appended to a file of the epoch's own beside the recovery store; when the
   epoch ends the file is made durable, and the partition's snapshot names it (it lists the
   transactions not known committed).
3. The transaction is committed only once Bytewax's store would resume from that snapshot or a
   later one (utopia.io.recovery_store): the store is always ahead of Kafka. With it, the
   transaction's number is committed as the offset of a consumer group of the producer's own: a
   marker that is visible exactly when the records are.

After a crash Bytewax resumes from its store, and each partition, rebuilt from its snapshot, first
fences its old producer (same `transactional.id`), which aborts the transaction that was open,
then reads its marker: a transaction the snapshot lists but the marker does not cover is sent
again from its file and committed. Everything after the snapshot is recomputed and written anew.
Nothing is lost (the store had it before Kafka did) and nothing is written twice (what Kafka has
committed, the snapshot says; what it has not, it never showed).
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import msgspec
from bytewax.outputs import StatefulSinkPartition
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from utopia.config import Settings
from utopia.io.faults import client_log
from utopia.io.runtime import RunFlags
from utopia.io.worker_sink import PerWorkerSink

log = logging.getLogger("utopia")

Message = tuple[str, bytes | None, bytes]
"""What one output record is sent as: topic, key and value, encoded."""

CHUNKS_DIRECTORY = "utopia-exactly-once"
"""Beside the recovery partitions: each epoch's records of each sink partition, until Kafka commits them."""
EXIT_WAIT_S = 60.0
"""How long a finished run waits for its last transactions: the store writes the last epoch after the sinks close."""
CRASH_AT = os.environ.get("UTOPIA_TEST_CRASH_AT", "")
"""For the crash tests only: `POINT:N` ends the process (as SIGKILL would) at POINT of transaction N of any partition.

POINT is `snapshotted` (its file and snapshot made, the store may not have them yet), `stored` (the store
has them, Kafka has not committed) or `committed` (committed, its file not yet removed)."""


class PartState(NamedTuple):
    """A partition's snapshot: the number of its next transaction, and the earlier ones not known committed."""

    next_transaction: int
    uncommitted: tuple[int, ...]


class TransactionalSink(PerWorkerSink):
    """One output topic, written exactly once: a partition (a transactional producer) on each worker."""

    def __init__(self, settings: Settings, dataflow: str, topic: str, flags: RunFlags):
        super().__init__(flags)
        self.settings, self.dataflow, self.topic = settings, dataflow, topic

    def build_part(self, step_id: str, for_part: str, resume_state: PartState | None) -> TransactionalPart:
        from utopia.io.kafka_io import OutputEncoder  # kafka_io builds this sink

        return TransactionalPart(
            self,
            step_id,
            for_part,
            OutputEncoder(self.settings, self.dataflow, self.topic),
            None if resume_state is None else PartState(*resume_state),
        )


def check_permissions(settings: Settings, dataflow: str) -> str | None:
    """What the principal may not do that exactly-once needs, as one line naming the ACL; None if nothing.

    Tried before the dataflow starts, with a transactional id and a group like the run's own: a
    refusal there stopped the run with a Rust panic from deep in Bytewax.
    """
    name = f"{settings.topics.client_id(dataflow)}-permissions"
    producer = Producer(settings.kafka_config() | {"transactional.id": name, "logger": _quiet})
    try:
        producer.init_transactions(15)
    except KafkaException as error:
        if error.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
            return (
                f"Kafka refused the transactional id {name}: with UTOPIA_GUARANTEE=exactly-once the principal "
                f"needs WRITE and DESCRIBE on transactional ids with the prefix {settings.topics.output_prefix} "
                "(docs/outputs.md#delivery)"
            )
        return f"Kafka refused to start a transaction ({error.args[0].str()}) for {name}"
    reader = Consumer(settings.kafka_config() | {"group.id": name, "logger": _quiet})
    try:
        reader.committed([TopicPartition(settings.topics.output("dead-letters"), 0)], timeout=15)
    except KafkaException as error:
        if error.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
            return (
                f"Kafka refused to read the offsets of group {name}: with UTOPIA_GUARANTEE=exactly-once the "
                f"principal needs READ on groups with the prefix {settings.topics.output_prefix} "
                "(docs/outputs.md#delivery)"
            )
    finally:
        reader.close()
    return None


_quiet = logging.getLogger("utopia.kafka.permissions")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class _Chunk:
    """One epoch's records of a partition, in their file: one transaction, and what of it is not sent yet."""

    __slots__ = ("number", "messages")

    def __init__(self, number: int, messages: list[Message]):
        self.number, self.messages = number, messages


def read_chunk(file: Path) -> list[Message]:
    """The records of a chunk's file: each batch's, msgpack after its length (4 bytes)."""
    data, at = file.read_bytes(), 0
    messages: list[Message] = []
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "little")
        messages.extend(map(tuple, msgspec.msgpack.decode(data[at + 4 : at + 4 + size])))
        at += 4 + size
    return messages  # type: ignore[return-value]


class TransactionalPart(StatefulSinkPartition):
    """One worker's producer for one output topic: one transaction per epoch, committed behind the store."""

    def __init__(self, sink: TransactionalSink, step_id: str, part: str, encoder: Any, resumed: PartState | None):
        settings, flags = sink.settings, sink.flags
        self.step_id, self.part, self.encoder = step_id, part, encoder
        self.transactional_id = f"{settings.topics.client_id(sink.dataflow)}-{step_id}-{part}"
        assert flags.recovery_directory is not None
        self.chunks = Path(flags.recovery_directory) / CHUNKS_DIRECTORY / f"{step_id}-{part}"
        self.chunks.mkdir(parents=True, exist_ok=True)
        interval_ms = int((flags.snapshot_seconds or 10) * 1000)
        self.producer = Producer(
            settings.kafka_config()
            | {
                "client.id": self.transactional_id,
                "transactional.id": self.transactional_id,
                "linger.ms": 5,
                # An epoch's transaction stays open for the epoch and until the store has it.
                "transaction.timeout.ms": min(max(60_000, 4 * interval_ms), 900_000),  # the broker allows 15 min
                "logger": client_log,
            }
        )
        self.marker_reader = Consumer(
            settings.kafka_config()
            | {
                "group.id": self.transactional_id,
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "logger": client_log,
            }
        )
        self.marker = TopicPartition(sink.topic, 0)
        self.lock = threading.Condition()
        self.file: BinaryIO | None = None
        """The file of this epoch's records, written as they come: an epoch's records are not kept in memory."""
        self.unsent: list[Message] = []
        """This epoch's records while an earlier epoch's transaction waits for the store."""
        self.prepared: deque[_Chunk] = deque()
        self.in_transaction: int | None = None
        """The number of the chunk whose records are in the open transaction."""
        self.durable = 0
        """Chunks up to this number are in the snapshot a resume would load."""
        try:
            # fences the producer of an earlier run, aborting its transaction
            _call(self.producer.init_transactions, 30)
            committed = self._committed()
            if resumed is not None:
                committed = self._send_again([n for n in resumed.uncommitted if n > committed]) or committed
        except KafkaException as error:
            self._fail(error)
        self.next = max(committed, resumed.next_transaction - 1 if resumed else 0) + 1
        for file in self.chunks.iterdir():  # those committed; a later number is a crashed epoch's, written anew
            if int(file.name) <= committed:
                file.unlink()
        self.committer = threading.Thread(
            target=self._commit_in_order, name=f"commit {self.transactional_id}", daemon=True
        )
        self.committer.start()
        _watch(Path(flags.recovery_directory)).add(self)

    def _committed(self) -> int:
        """The number of the last transaction committed: the marker's offset (0 before the first)."""
        for attempt in range(20):
            try:
                [marker] = self.marker_reader.committed([self.marker], timeout=10)
                return 0 if marker.offset == OFFSET_INVALID else marker.offset
            except KafkaException as error:  # the coordinator of a new group may still be loading
                if not error.args[0].retriable() and error.args[0].code() != KafkaError.NOT_COORDINATOR:
                    raise
                time.sleep(0.1 * (attempt + 1))
        raise KafkaException(f"the commit marker of {self.transactional_id} could not be read")

    def _send_again(self, numbers: list[int]) -> int | None:
        """Transactions in the snapshot that Kafka never committed: sent again from their files, in one."""
        if not numbers:
            return None
        messages: list[Message] = []
        for number in numbers:
            file = self.chunks / str(number)
            if not file.exists():
                raise KafkaException(
                    f"{file} is missing: the outputs of transaction {number} of "
                    f"{self.transactional_id} cannot be sent again"
                )
            messages.extend(read_chunk(file))
        self.producer.begin_transaction()
        self._produce(messages)
        self._commit(numbers[-1])
        log.info(
            "resumed: %d record(s) of %d transaction(s) that a crash left uncommitted sent again (%s)",
            len(messages),
            len(numbers),
            self.encoder.topic,
        )
        return numbers[-1]

    def write_batch(self, batches: list[list[Any]]) -> None:
        messages = self.encoder.messages(item for batch in batches for item in batch)
        frame = msgspec.msgpack.encode(messages)
        with self.lock:
            if self.file is None:
                self.file = open(self.chunks / str(self.next), "wb")  # noqa: SIM115 -- closed by `snapshot`
            self.file.write(len(frame).to_bytes(4, "little"))
            self.file.write(frame)
            if self.in_transaction == self.next:
                self._produce(messages)
            elif self.in_transaction is None:  # and so no earlier transaction waits
                self.producer.begin_transaction()
                self.in_transaction = self.next
                self._produce(messages)
            else:
                self.unsent.extend(messages)

    def snapshot(self) -> tuple[int, tuple[int, ...]]:
        """The end of an epoch: its file is made durable, and named in the snapshot until Kafka commits it."""
        with self.lock:
            if self.file is not None:
                self.file.flush()
                os.fsync(self.file.fileno())
                self.file.close()
                self.file = None
                self.prepared.append(_Chunk(self.next, self.unsent))
                self.next, self.unsent = self.next + 1, []
                _crash_at("snapshotted", self.next - 1)
            return self.next, tuple(chunk.number for chunk in self.prepared)  # a PartState, as a plain tuple

    def stored(self, durable: int) -> None:
        """The store would now resume with every chunk up to `durable` (from utopia.io.recovery_store)."""
        with self.lock:
            if durable > self.durable:
                self.durable = durable
                self.lock.notify_all()

    def waiting(self) -> bool:
        return bool(self.prepared)

    def _commit_in_order(self) -> None:
        while True:
            with self.lock:
                while not (self.prepared and self.prepared[0].number <= self.durable):
                    self.lock.wait()
                number = self.prepared[0].number
            _crash_at("stored", number)
            try:
                self._commit(number)  # nothing else goes into this transaction: later records wait for the next
            except KafkaException as error:
                self._fail(error)
                return
            _crash_at("committed", number)
            with self.lock:
                self.prepared.popleft()
                self.in_transaction = None
                (self.chunks / str(number)).unlink(missing_ok=True)
                self._begin_next()
                self.lock.notify_all()

    def _begin_next(self) -> None:
        """With no transaction open: open one for the oldest records not yet sent (with the lock held)."""
        if self.prepared:
            chunk = self.prepared[0]
            messages, chunk.messages, number = chunk.messages, [], chunk.number
        elif self.file is not None:
            messages, self.unsent, number = self.unsent, [], self.next
        else:
            return
        self.producer.begin_transaction()
        self.in_transaction = number
        self._produce(messages)

    def _produce(self, messages: Iterable[Message]) -> None:
        produce = self.producer.produce
        for topic, key, value in messages:
            try:
                produce(topic, value, key)
            except BufferError:
                while True:
                    self.producer.poll(0.1)
                    try:
                        produce(topic, value, key)
                        break
                    except BufferError:
                        continue

    def _commit(self, number: int) -> None:
        """Commit the open transaction with its marker: the group's offset becomes `number` with its records."""
        self.producer.send_offsets_to_transaction(
            [TopicPartition(self.marker.topic, 0, number)], self.marker_reader.consumer_group_metadata(), 30
        )
        _call(self.producer.commit_transaction, 60)

    def _fail(self, error: KafkaException) -> None:
        """Kafka refused a transaction: one line, and the process ends (a resume with -r sends it again).

        Its records stay invisible to read_committed readers; nothing after it is committed either.
        """
        reason = error.args[0].str() if error.args and hasattr(error.args[0], "str") else str(error)
        if "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" in reason or "Transactional Id authorization failed" in reason:
            reason += f": the principal needs WRITE and DESCRIBE on TransactionalId {self.transactional_id}"
        elif "GROUP_AUTHORIZATION_FAILED" in reason or "Group authorization failed" in reason:
            reason += f": the principal needs READ on group {self.transactional_id}"
        print(
            f"utopia: the transactions of {self.transactional_id} on {self.encoder.topic} failed ({reason}); "
            "fix that and resume with the same -r",
            file=sys.stderr,
            flush=True,
        )
        os._exit(1)

    def close(self) -> None:
        """The end of the run: what is left commits once the store has the last epoch (after every sink closed)."""
        _finishing.append(self)

    def finish(self, deadline: float) -> int:
        """Wait until every snapshotted chunk is committed; how many transactions are left uncommitted at `deadline`."""
        with self.lock:
            while self.prepared and time.monotonic() < deadline:
                self.lock.wait(timeout=0.1)
            return len(self.prepared)


def _call(method: Any, timeout: float, attempts: int = 5) -> None:
    """A transactional call, retried while Kafka says it may succeed later."""
    for attempt in range(attempts):
        try:
            method(timeout)
            return
        except KafkaException as error:
            if not error.args[0].retriable() or attempt == attempts - 1:
                raise


def _crash_at(point: str, number: int) -> None:
    if CRASH_AT == f"{point}:{number}":
        os._exit(137)


class _StoreWatch:
    """Tells each partition of this process what the store holds, read by a process of its own.

    Bytewax's store is SQLite compiled into Bytewax; Python's sqlite3 is another copy of SQLite. Two
    copies in one process break each other's POSIX locks (sqlite.org/howtocorrupt.html, 2.2.1): read
    from the dataflow's process, the store's shared memory was reset under Bytewax, which died of
    SIGBUS. `python -m utopia.io.recovery_store DIR` reads it instead, and ends with this process.
    """

    def __init__(self, directory: Path):
        self.parts: dict[tuple[str, str], TransactionalPart] = {}
        self.lock = threading.Lock()
        self.reader = subprocess.Popen(
            [sys.executable, "-m", "utopia.io.recovery_store", str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._listen, name="recovery store watch", daemon=True).start()

    def add(self, part: TransactionalPart) -> None:
        with self.lock:
            self.parts[part.step_id, part.part] = part
            assert self.reader.stdin is not None
            self.reader.stdin.write(f"{part.step_id}\t{part.part}\n")
            self.reader.stdin.flush()

    def _listen(self) -> None:
        assert self.reader.stdout is not None
        for line in self.reader.stdout:
            step_id, part, durable = line.rstrip("\n").split("\t")
            with self.lock:
                known = self.parts.get((step_id, part))
            if known is not None:
                known.stored(int(durable))
        if not sys.is_finalizing():  # it died: nothing would be committed again, silently
            print(
                f"utopia: the reader of the recovery store stopped (exit code {self.reader.wait()}), so no output "
                "would be committed any more: resume with the same -r",
                file=sys.stderr,
                flush=True,
            )
            os._exit(1)


_watches: dict[Path, _StoreWatch] = {}
_watches_lock = threading.Lock()
_finishing: list[TransactionalPart] = []


def _watch(directory: Path) -> _StoreWatch:
    with _watches_lock:
        if directory not in _watches:
            _watches[directory] = _StoreWatch(directory)
            atexit.register(_finish)
        return _watches[directory]


def _finish() -> None:
    """At the end of a run: wait for the last transactions, which the store allows only once Bytewax is done."""
    deadline = time.monotonic() + EXIT_WAIT_S
    for part in _finishing:
        left = part.finish(deadline)
        if left:
            log.warning(
                "%d transaction(s) of %s were not committed in time: a resume with the same -r commits them",
                left,
                part.transactional_id,
            )
