"""Dates on the wire: the two `eventdate` formats (SPEC 1 and 4.13) and ISO-8601 output."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
# Java's Date.toString(): "Mon Mar 01 20:00:00 UTC 2027"; data-demo runs in UTC (GMT is the same zone).
_JAVA_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<mon>[A-Z][a-z]{2}) (?P<day>\d{2}) "
    r"(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2}) (?:UTC|GMT) (?P<year>\d{4})"
)


def parse_eventdate(text: str) -> datetime:
    """Read an ISO-8601 instant or date, or Java's `Date.toString()`, as an aware UTC datetime.

    A date alone is midnight UTC and an ISO time without offset is UTC. Raises ValueError
    for anything else, which the decoder reports as a wrong type.
    """
    java = _JAVA_DATE.fullmatch(text)
    if java:
        month = _MONTHS.get(java["mon"])
        if month is None:
            raise ValueError(f"eventdate {text!r}: unknown month")
        return datetime(
            int(java["year"]), month, int(java["day"]),
            int(java["h"]), int(java["m"]), int(java["s"]), tzinfo=UTC,
        )
    if not text[:4].isdigit():
        raise ValueError(f"eventdate {text!r} is neither ISO-8601 nor Java's Date.toString()")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"eventdate {text!r} is neither ISO-8601 nor Java's Date.toString()") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_instant(moment: datetime) -> str:
    """ISO-8601 in UTC with a `Z`, milliseconds only when there are any: `2027-03-01T20:00:00Z`."""
    moment = moment.astimezone(UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def normalize_eventdate(text: str | None) -> str | None:
    """The eventdate of an output record: one ISO-8601 form whatever the input format was."""
    return None if text is None else format_instant(parse_eventdate(text))
