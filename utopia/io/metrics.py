"""What a running dataflow has done, as Prometheus metrics on Bytewax's own endpoint.

With `BYTEWAX_DATAFLOW_API_ENABLED=true`, `python -m bytewax.run` serves `/metrics` on port 3030
(`BYTEWAX_DATAFLOW_API_PORT`): Bytewax's per-step counters, then Python's default registry
(bytewax/_metrics.py, v0.21.1), where these live. Counted per batch, not per record, so they cost
nothing measurable. Per process: with several processes, add them up.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from utopia.steps.holding import HeldUntilKnown

RECORDS_READ = Counter("utopia_records_read", "Input records read, bad ones and tombstones included", ["dataflow"])
RECORDS_WRITTEN = Counter("utopia_records_written", "Output records handed to the sink", ["dataflow", "output"])
DEAD_LETTERS = Counter("utopia_dead_letters", "Records sent to the dead-letter topic", ["dataflow"])
LATE = Counter(
    "utopia_late_records", "Records not counted because their window had closed (trending-artists)", ["dataflow"]
)
WAITING = Gauge("utopia_records_waiting", "Records of this process held until the record they refer to arrives")
WAITING.set_function(lambda: HeldUntilKnown.waiting_in_process)
