"""Faults told once and clearly: what the Kafka clients say, whether the broker answers, fatal errors.

During a two-minute broker outage librdkafka printed 31,207 lines (244 a second) and the dataflow
none of its own. Here its log goes through Python's logging with repeats held back (the first
line, then a count every 30 s), the dataflow says in one line when Kafka becomes unreachable and
when it is back, and the errors that end a run are one line saying what to do, not a traceback.
Every line names the dataflow (docs/outputs.md#delivery).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import NoReturn

from confluent_kafka import KafkaError

log = logging.getLogger("utopia")
client_log = logging.getLogger("utopia.kafka")
"""librdkafka's own log lines, passed to every client as its `logger`."""

REPEAT_WINDOW_S = 30.0


def configure_logging(dataflow: str) -> None:
    """One handler for the project's lines, each starting with the dataflow's name."""
    root = logging.getLogger("utopia")
    if any(getattr(handler, "utopia", False) for handler in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.utopia = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter(f"%(asctime)s {dataflow} %(levelname)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    if not any(isinstance(f, RepeatFilter) for f in client_log.filters):
        client_log.addFilter(told_by_its_owner)
        client_log.addFilter(RepeatFilter())


def told_by_its_owner(record: logging.LogRecord) -> bool:
    """Drops librdkafka's line on a fatal error: the client raises the error too, and whoever uses it ends
    the run with a line that says it (`end_run`), which this one would only precede."""
    return not record.getMessage().startswith("FATAL ")


class RepeatFilter(logging.Filter):
    """Lets a line through the first time; its repeats (numbers aside) only as a count every `window_s`."""

    def __init__(self, window_s: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.window_s, self.clock = window_s, clock
        self.seen: dict[str, tuple[float, int]] = {}  # shape of the line -> (when last let through, held back since)
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        shape = re.sub(r"\d+", "#", record.getMessage())
        now = self.clock()
        with self.lock:
            last = self.seen.get(shape)
            if last is not None and now - last[0] < self.window_s:
                self.seen[shape] = (last[0], last[1] + 1)
                return False
            self.seen[shape] = (now, 0)
        if last is not None and last[1]:
            record.msg = f"{record.getMessage()} ({last[1]} more like it in the last {self.window_s:.0f} s)"
            record.args = None
        return True


ASK_EVERY_S = 1.0
"""How often a lost broker is asked whether it answers again."""


class BrokerWatch:
    """Whether the brokers answer: told once when the clients lose them all, once at their first answer again.

    librdkafka's error callback says when every broker is down, never when one is back. Records
    that come again say so, but a quiet topic brings none: the return of a broker was logged 12
    minutes late, with the next record. So while they are lost, a thread asks them (`ask`, a
    metadata request that waits about `ask_every_s`) until they answer.
    """

    def __init__(self, servers: str, ask: Callable[[], bool], ask_every_s: float = ASK_EVERY_S):
        self.servers, self.ask, self.ask_every_s = servers, ask, ask_every_s
        self.lost_at: float | None = None
        self.lock = threading.Lock()
        self.asking: threading.Thread | None = None

    def error(self, error: KafkaError) -> None:
        """A client's `error_cb`: librdkafka retries by itself; only a lost cluster is worth a line."""
        if error.code() != KafkaError._ALL_BROKERS_DOWN:
            return
        with self.lock:
            if self.lost_at is not None:
                return
            self.lost_at = time.monotonic()
            if self.asking is None or not self.asking.is_alive():
                self.asking = threading.Thread(target=self._ask_until_answered, name="utopia-broker-watch", daemon=True)
                self.asking.start()
        log.warning("Kafka at %s is unreachable (%s); waiting for it, nothing is lost", self.servers, error.str())

    def _ask_until_answered(self) -> None:
        while self.lost_at is not None:
            started = time.monotonic()
            if self.ask():
                self.answered()
                return
            time.sleep(max(0.0, self.ask_every_s - (time.monotonic() - started)))

    def answered(self) -> None:
        """The brokers answered (records, the end of a partition, or metadata): they are back."""
        if self.lost_at is None:
            return
        with self.lock:
            lost_at, self.lost_at = self.lost_at, None
        if lost_at is not None:
            log.warning("Kafka at %s answers again, after %.0f s", self.servers, time.monotonic() - lost_at)


_watches: dict[str, BrokerWatch] = {}


def broker_watch(servers: str, ask: Callable[[], bool]) -> BrokerWatch:
    """The process's one watch of these servers (`ask` is taken from the first caller)."""
    watch = _watches.get(servers)
    if watch is None:
        watch = _watches[servers] = BrokerWatch(servers, ask)
    return watch


def end_run(dataflow: str, reason: str) -> NoReturn:
    """A fault met on a worker thread that no retry mends: one line, and the process ends with rc 1.

    Raised there instead, it became a Rust panic with its traceback (88 lines), and a second one while
    Bytewax unwound aborted the process (rc 134, `panic in a destructor during cleanup`).
    """
    print(f"utopia {dataflow}: {reason}", file=sys.stderr, flush=True)
    os._exit(1)


def peer_lost_hook(dataflow: str, argv: list[str]) -> Callable:
    """A `sys.excepthook` that turns Bytewax's panic at a lost peer process into one line.

    When one of several processes (`-i`/`-a`) dies, the others end with `PanicException: Send
    thread panic: Any { .. }` (Bytewax 0.21.1's timely communication threads), which says neither
    what happened nor what to do.
    """
    previous = sys.excepthook

    def hook(kind, value, traceback) -> None:
        text = f"{kind.__name__}: {value}"
        if kind.__name__ == "PanicException" and ("Send thread" in text or "Recv thread" in text):
            me, count = _process_of(argv)
            other = f"process {1 - me}" if count == 2 else "a process"
            print(
                f"utopia {dataflow}: {other} of {count} lost (this is process {me}); restart all {count} "
                "(with -r to resume from the last snapshot)",
                file=sys.stderr,
            )
            return
        previous(kind, value, traceback)

    return hook


def _process_of(argv: list[str]) -> tuple[int, int]:
    """This process's `-i` and the number of `-a` addresses."""
    me, count = 0, 1
    for n, arg in enumerate(argv[:-1]):
        if arg in ("-i", "--process-id"):
            me = int(argv[n + 1])
        elif arg in ("-a", "--addresses"):
            count = len(argv[n + 1].split(";"))
    return me, count
