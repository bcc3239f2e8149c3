"""Stopping on Ctrl-C or SIGTERM: the inputs end, what is pending is written, and one line says what was done.

Bytewax 0.21.1 turns a signal into `BytewaxRuntimeError: signal received` and a traceback, and
unflushed changelog updates are lost. Here the first SIGINT or SIGTERM asks the Kafka sources to
end: the dataflow then drains as at the end of a finite input, except that nothing pretends the
input ended: records still waiting for a reference are not dead-lettered (a restart reads them
again, or resumes them from recovery) and hours of trending-artists still open are not closed.
A second signal stops at once, as before.
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading

log = logging.getLogger("utopia")

requested = threading.Event()
"""Set by the first SIGINT or SIGTERM: the sources end, and the end of the input is not the end of the data."""

_lock = threading.Lock()
_read = [0, 0]  # records read, of which dead letters


def count(records: int, dead: int) -> None:
    """Records a worker of this process read (all of a batch's, bad ones included)."""
    with _lock:
        _read[0] += records
        _read[1] += dead


def stop_on_signals() -> None:
    """Handle SIGINT and SIGTERM in this process as a graceful stop."""
    previous = signal.getsignal(signal.SIGINT)

    def stop(number: int, frame) -> None:
        if requested.is_set():  # the second time: at once
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        requested.set()
        log.warning(
            "%s received: the inputs stop; pending changelog updates and outputs are written first "
            "(again to stop at once)",
            signal.Signals(number).name,
        )

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    atexit.register(_report)


def _report() -> None:
    if requested.is_set():
        from utopia.steps.holding import HeldUntilKnown

        records, dead = _read
        log.warning(
            "stopped after reading %d record(s) (%d dead letters); pending outputs were written; %d record(s) "
            "still waited for a record they refer to and are read again on restart",
            records,
            dead,
            HeldUntilKnown.waiting_in_process,
        )
