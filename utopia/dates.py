"""Dates on the wire: the `eventdate` forms data-demo writes, and ISO-8601 UTC out (docs/outputs.md#dates).

The data-demo daemon writes `java.sql.Timestamp.toString()`: `2027-06-26 21:19:45.676`, 1 to 9
fraction digits, no zone, in the producer JVM's local time. That zone is a setting
(`UTOPIA_EVENTDATE_ZONE`, default UTC): read as UTC, a producer running in Chicago would put every
event six hours off. ISO-8601 with an offset, a date alone and Java's `Date.toString()` are accepted too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from itertools import repeat
from operator import floordiv, itemgetter, sub
from typing import cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
# What Java's Date.toString() prints for the zones a data-demo producer plausibly runs in. Such an
# abbreviation names a fixed offset (CDT is always UTC-5), unlike a zone name.
_ABBREVIATIONS = {
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "EST": -5,
    "EDT": -4,
    "CST": -6,
    "CDT": -5,
    "MST": -7,
    "MDT": -6,
    "PST": -8,
    "PDT": -7,
    "AKST": -9,
    "AKDT": -8,
    "HST": -10,
}
_JAVA_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<mon>[A-Z][a-z]{2}) (?P<day>\d{2}) "
    r"(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2}) (?P<zone>[A-Z]{1,4}) (?P<year>\d{4})"
)
# java.sql.Timestamp.toString() (a space) and ISO-8601 (a `T`); the time and the zone are optional.
_LOCAL_OR_ISO = re.compile(
    r"(?P<year>\d{4})-(?P<mon>\d{2})-(?P<day>\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.(?P<frac>\d{1,9}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?)?"
)


class UnknownDate(ValueError):
    """An eventdate in none of the accepted forms: the event is kept, its date is unknown."""


def zone_named(name: str) -> tzinfo:
    """The IANA zone `name` (`America/Chicago`); ValueError with one line if there is no such zone."""
    try:
        return UTC if name.upper() == "UTC" else ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone name such as UTC or America/Chicago") from None


def parse_eventdate(text: str, zone: tzinfo = UTC) -> datetime:
    """An eventdate as an aware UTC datetime; a time without offset, or a date alone, is in `zone`.

    Fractions beyond milliseconds are cut, not rounded. Raises UnknownDate for any other text.
    """
    match = _LOCAL_OR_ISO.fullmatch(text)
    if match:
        return _from_parts(text, match, zone)
    match = _JAVA_DATE.fullmatch(text)
    if match and match["zone"] in _ABBREVIATIONS and match["mon"] in _MONTHS:
        offset = timezone(timedelta(hours=_ABBREVIATIONS[match["zone"]]))
        return _instant(
            text,
            int(match["year"]),
            _MONTHS[match["mon"]],
            int(match["day"]),
            int(match["h"]),
            int(match["m"]),
            int(match["s"]),
            0,
            offset,
        )
    raise UnknownDate(f"eventdate {text!r} is in no accepted form")


def _from_parts(text: str, match: re.Match, zone: tzinfo) -> datetime:
    micros = int((match["frac"] or "0")[:3].ljust(3, "0")) * 1000  # milliseconds, cut
    offset = match["zone"]
    if offset is None:
        where = zone
    elif offset == "Z":
        where = UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        where = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return _instant(
        text,
        int(match["year"]),
        int(match["mon"]),
        int(match["day"]),
        int(match["h"] or 0),
        int(match["m"] or 0),
        int(match["s"] or 0),
        micros,
        where,
    )


def _instant(
    text: str, year: int, month: int, day: int, hour: int, minute: int, second: int, micros: int, where: tzinfo
) -> datetime:
    try:
        return datetime(year, month, day, hour, minute, second, micros, tzinfo=where).astimezone(UTC)
    except ValueError:  # 2027-02-30, 25:00
        raise UnknownDate(f"eventdate {text!r} is not a real date and time") from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_seconds_of: dict[str, int] = {}


def instant_ms(text: str | None) -> int | None:
    """An ISO-8601 instant (`streamtime`) as epoch milliseconds, fractions cut; None if null or no instant.

    Streams come by the million and a second holds many of them: `2026-11-25T15:32:36` is read
    once and remembered, the milliseconds are digits after it.
    """
    if text is None:
        return None
    if len(text) >= 20 and text[-1] == "Z" and text[10] == "T" and text[19] in ".Z":
        seconds = _seconds_of.get(text[:19])
        if seconds is None:
            try:
                seconds = int((datetime.fromisoformat(text[:19] + "+00:00") - _EPOCH).total_seconds())
            except ValueError:
                return None
            if len(_seconds_of) > 100_000:
                _seconds_of.clear()
            _seconds_of[text[:19]] = seconds
        fraction = text[20:-1]
        if text[19] == "." and not fraction.isdigit():
            return None
        return seconds * 1000 + int((fraction[:3] or "0").ljust(3, "0"))
    match = _LOCAL_OR_ISO.fullmatch(text)
    if match is None or match["zone"] is None:
        return None
    try:
        return (_from_parts(text, match, UTC) - _EPOCH) // timedelta(milliseconds=1)
    except UnknownDate:
        return None


def instants_ms(texts: list[str | None]) -> list[int | None]:
    """`instant_ms` of each text, a whole batch at once: by msgspec, in C, where all are in the usual form.

    A million streams were a million calls of `instant_ms`, each slicing and parsing its text in
    Python. The usual form is `2026-11-25T15:32:36.123Z` or `2026-11-25T15:32:36Z` (what the
    generator and data-demo write), which msgspec reads as RFC 3339 exactly as `instant_ms` does;
    a batch with any other (another form, null, a bad date) is read one text at a time.
    """
    if None in texts:
        return list(map(instant_ms, texts))
    present = cast(list[str], texts)  # no None in it, just checked
    if not set(map(len, present)) <= _USUAL_LENGTHS or not set(map(_marks, present)) <= _USUAL_MARKS:
        return list(map(instant_ms, texts))
    try:
        moments = msgspec.convert(present, list[datetime])
    except msgspec.ValidationError:
        return list(map(instant_ms, texts))
    return list(map(floordiv, map(sub, moments, repeat(_EPOCH)), repeat(_MILLISECOND)))


_USUAL_LENGTHS = {20, 24}
_marks = itemgetter(10, 13, 16, 19, -1)
_USUAL_MARKS = {("T", ":", ":", ".", "Z"), ("T", ":", ":", "Z", "Z")}
_MILLISECOND = timedelta(milliseconds=1)


def format_instant(moment: datetime) -> str:
    """ISO-8601 in UTC with a `Z`, milliseconds only when there are any: `2027-03-01T20:00:00Z`."""
    moment = moment.astimezone(UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"
