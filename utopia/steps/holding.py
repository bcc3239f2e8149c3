"""Holding records that arrive before the record they need (docs/outputs.md#waiting)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Generic, TypeVar

import msgspec
from confluent_kafka import Message

from utopia.codec import FarMessage, InRecord, as_in_record

R = TypeVar("R")
H = TypeVar("H")
log = logging.getLogger("utopia")


Sourced = tuple[InRecord | Message | FarMessage, R]
"""A record that may have to wait, after the raw record it was decoded from: `(raw, record)`.

If what it waits for never comes, it goes to the dead letters as it was read: its own topic,
offset, key and value text. From Kafka, `raw` is the message itself (a `FarMessage` if the record
came from another process), which becomes an `InRecord` only if it is held, pickled into a
snapshot or dead-lettered: most records wait for nothing, and building one per record would cost
more than the rest of its journey.
"""


def detached(record: Any) -> Any:
    """A record to keep, `(raw, record)` or placed: its raw message no longer a pointer into what it came in.

    A Kafka message from another process arrives still encoded, with the others of its run
    (`utopia.codec.FarMessages`, utopia.steps.wire): kept as it is, one held ticket would keep the
    bytes of its whole bundle. Resolved, it keeps its own record; most records are never held, so
    most messages are never read.
    """
    value = getattr(record, "value", record)  # a placed record: its value
    if type(value) is not tuple or type(value[0]) is not FarMessage:
        return record
    kept = (as_in_record(value[0]), value[1])
    return kept if value is record else msgspec.structs.replace(record, value=kept)


class HeldUntilKnown(Generic[H]):
    """Records waiting for a reference to become known; released once, in their input order.

    What waits is a `Sourced` pair, or a placed one (`Placed(lane, position, (raw, record))`).

    Topics are not ordered relative to each other, so a ticket may come before its event. It is
    never dropped for that: it waits here and is applied right after the record that completes it.
    Nothing waits silently: `waiting_in_process` counts every held record of this process (the
    dataflow logs it while it tails), and at the end of a finite input what is still held becomes
    dead letters saying what never came.
    """

    __slots__ = ("waiting",)

    waiting_in_process = 0
    _count_lock = threading.Lock()  # worker threads share the count

    def __init__(self) -> None:
        self.waiting: list[H] = []

    def hold(self, record: H) -> None:
        self.waiting.append(detached(record))
        self._count(1)

    def release(self) -> list[H]:
        released, self.waiting = self.waiting, []
        if released:
            self._count(-len(released))
        return released

    @staticmethod
    def _count(change: int) -> None:
        # The class named, not `cls`: from a subclass, `cls.waiting_in_process += ...` would start a count of its own.
        with HeldUntilKnown._count_lock:
            HeldUntilKnown.waiting_in_process += change

    def __len__(self) -> int:
        return len(self.waiting)

    def __getstate__(self) -> list[H]:
        return self.waiting

    def __setstate__(self, waiting: list[H]) -> None:
        # Resumed from a recovery snapshot: these records wait in this process now.
        self.waiting = waiting
        self._count(len(waiting))


class WaitingLog:
    """Logs how many records wait in this process, at most once per `every_s` and only on change.

    The log line's prefix names the dataflow (utopia.io.faults.configure_logging). One for the
    whole process (`WAITING_LOG`): the count is the process's, so a log per keyed step would say
    it again for every step that holds records.
    """

    def __init__(self, every_s: float = 30.0):
        self.every_s = every_s
        self.logged = 0
        self.next_at = time.monotonic() + every_s

    def tick(self) -> None:
        if time.monotonic() < self.next_at:
            return
        self.next_at = time.monotonic() + self.every_s
        waiting = HeldUntilKnown.waiting_in_process
        if waiting != self.logged:
            self.logged = waiting
            log.warning("%d record(s) wait for a record they refer to", waiting)


WAITING_LOG = WaitingLog()
"""The process's one log of waiting records, ticked by every keyed step that holds records."""
