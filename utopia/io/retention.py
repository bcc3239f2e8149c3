"""Records the broker deletes by age (a topic's `retention.ms`): refused before loading, told when found missing.

Kafka deletes a record once its timestamp is older than its topic's `retention.ms` (7 days by
default), whenever it was written. A data set dated 2026-11-01 loaded on 2026-12-07 was gone five
minutes later, and a dataflow then read nothing, with no more word than librdkafka's "offset reset".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from utopia.io.faults import RepeatFilter

DAY_MS = 86_400_000
KAFKA_DEFAULT_RETENTION_MS = 7 * DAY_MS
LOAD_MARGIN_MS = DAY_MS
"""A data set is loaded only if the broker keeps all of it at least this long."""
KEEP_LONGER = "or keep the topics' records longer (retention.ms=-1, as `utopia topics create` makes input topics)"

log = logging.getLogger("utopia.retention")
log.addFilter(RepeatFilter())  # one line a topic, however many of its partitions lost records


def kept_for(retention_ms: int) -> str:
    """`retention.ms` in words: `7 days`, `36 hours`, `for ever` (-1)."""
    if retention_ms < 0:
        return "for ever"
    for unit, size in (("days", DAY_MS), ("hours", 3_600_000), ("minutes", 60_000), ("seconds", 1000)):
        if retention_ms >= size:
            return f"{retention_ms / size:.3g} {unit}"
    return f"{retention_ms} ms"


def _retention_ms(config: dict[str, str]) -> int | None:
    """How long a topic keeps records by age; None if its configuration is not known. A compacted-only topic keeps
    them for ever."""
    if "retention.ms" not in config:
        return None
    if "delete" not in config.get("cleanup.policy", "delete"):
        return -1
    return int(config["retention.ms"])


def too_old_to_load(configs: dict[str, dict[str, str]], start_ms: int, now_ms: int) -> str | None:
    """Why a data set starting at `start_ms` would soon be deleted from these topics (name -> configuration); None if
    it would not."""
    for topic, config in configs.items():
        retention = _retention_ms(config)
        if retention is not None and retention >= 0 and start_ms + retention < now_ms + LOAD_MARGIN_MS:
            start = datetime.fromtimestamp(start_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
            return (
                f"{topic} keeps records {kept_for(retention)} (retention.ms={retention}) and this data set starts "
                f"{start}, {kept_for(max(now_ms - start_ms, 0))} ago: the broker would soon delete it. Start it "
                f"later (--start yesterday) {KEEP_LONGER}"
            )
    return None


class DeletedRecords:
    """Told by a partition reader that records it was to read are gone: one line a topic saying why and what to do."""

    def __init__(self, configs: Callable[[str], dict[str, str]]):
        self.configs = configs  # a topic's configuration; {} where it cannot be read

    def __call__(self, topic: str, partition: int, wanted: int, first: int, end: int) -> None:
        """Offset `wanted` of `topic`'s `partition` is not on the broker, which holds offsets `first` to `end` - 1."""
        if wanted >= first:
            log.warning(
                "%s partition %d ends at offset %d, before offset %d this dataflow resumes at: the topic was "
                "emptied or made anew; reading it from offset %d",
                topic,
                partition,
                end,
                wanted,
                first,
            )
            return
        retention = _retention_ms(self.configs(topic))
        if retention is not None and retention < 0:
            why = "the topic keeps records for ever by age: its retention.bytes or a delete-records request"
        else:
            known = (
                "its retention.ms cannot be read"
                if retention is None
                else (f"it keeps records {kept_for(retention)}, retention.ms={retention}")
            )
            why = (
                f"{known}; to keep loaded data, give it recent timestamps (utopia generate --start yesterday) "
                f"{KEEP_LONGER}"
            )
        log.warning(
            "%s: the broker deleted %s record(s) of partition %d (offsets %d to %d) before this dataflow read "
            "them (%s)",
            topic,
            f"{first - wanted:,}",
            partition,
            wanted,
            first - 1,
            why,
        )
