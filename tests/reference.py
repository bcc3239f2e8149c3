"""Plain reference computations of docs/outputs.md#outputs, written for clarity, not speed.

Property tests compare the dataflows with these on random input. They work on the decoded,
good records in input order, and share no code with the dataflows' state classes.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from utopia.dates import UnknownDate, format_instant, parse_eventdate
from utopia.models import Artist, Email, Event, Stream, Ticket


def ranked(counts: Counter, reached: dict, n: int = 3) -> list[tuple[str, int]]:
    """Higher count first; on equal counts, the one that reached that count first (docs/outputs.md#ranking)."""
    return sorted(counts.items(), key=lambda item: (-item[1], reached[item[0]]))[:n]


def customer_stream_count(streams: list[Stream]) -> dict[str, dict]:
    counts = Counter(s.customerid for s in streams)
    return {c: {"customerid": c, "streams": n} for c, n in counts.items()}


def top_customer_artists(streams: list[Stream]) -> dict[str, dict]:
    counts: dict[str, Counter] = {}
    reached: dict[str, dict] = {}
    for position, s in enumerate(streams):
        counts.setdefault(s.customerid, Counter())[s.artistid] += 1
        reached.setdefault(s.customerid, {})[s.artistid] = position
    return {
        c: {"customerid": c, "top": [{"artistid": a, "streams": n} for a, n in ranked(counts[c], reached[c])]}
        for c in counts
    }


def ticket_responses(records: list[Event | Ticket]) -> list[tuple[str, dict]]:
    capacity: dict[str, int] = {}
    confirmed: Counter = Counter()
    waiting: dict[str, list[Ticket]] = {}
    out = []

    def decide(t: Ticket) -> None:
        cap = capacity[t.eventid]
        if confirmed[t.eventid] < cap:
            confirmed[t.eventid] += 1
            status, remaining = "CONFIRMED", cap - confirmed[t.eventid]
        else:
            status, remaining = "REJECTED", 0
        value = {"ticketid": t.id, "eventid": t.eventid, "customerid": t.customerid,
                 "status": status, "remaining": remaining}
        out.append((t.id, value))

    for r in records:
        if isinstance(r, Event):
            if r.capacity is None:
                capacity.pop(r.id, None)
                continue
            capacity[r.id] = r.capacity
            for t in waiting.pop(r.id, []):
                decide(t)
        elif r.eventid in capacity:
            decide(r)
        else:
            waiting.setdefault(r.eventid, []).append(r)
    return out


def event_alerts(records: list) -> list[tuple[str, dict]]:
    """sold_out/event-alerts: every good Event and Ticket in input order."""
    events: dict[str, Event] = {}
    sold: Counter = Counter()
    alerted: set = set()
    waiting: dict[str, list[Ticket]] = {}
    out = []

    def sell(t: Ticket) -> None:
        e = events[t.eventid]
        sold[e.id] += 1
        for kind, reached in (("NEARLY_SOLD_OUT", 10 * sold[e.id] >= 9 * e.capacity),
                              ("SOLD_OUT", sold[e.id] >= e.capacity)):
            if reached and (e.id, kind) not in alerted:
                alerted.add((e.id, kind))
                out.append((e.id, {"eventid": e.id, "artistid": e.artistid, "venueid": e.venueid,
                                   "capacity": e.capacity, "sold": sold[e.id],
                                   "remaining": max(e.capacity - sold[e.id], 0), "alert": kind}))

    for r in records:
        if isinstance(r, Event):
            events[r.id] = r
            if r.capacity is not None:
                for t in waiting.pop(r.id, []):
                    sell(t)
        elif isinstance(r, Ticket):
            if r.eventid in events and events[r.eventid].capacity is not None:
                sell(r)
            else:
                waiting.setdefault(r.eventid, []).append(r)
    return out


def streamer_alerts(records: list) -> list[tuple[str, dict]]:
    """sold_out/event-streamer-alerts, with each customer's email as of the event's first sighting."""
    streams: dict[str, Counter] = {}
    reached: dict[str, dict] = {}
    email: dict[str, str] = {}
    seen: set = set()
    out = []
    for position, r in enumerate(records):
        if isinstance(r, Stream):
            streams.setdefault(r.artistid, Counter())[r.customerid] += 1
            reached.setdefault(r.artistid, {})[r.customerid] = position
        elif isinstance(r, Email) and r.email is not None:
            email[r.customerid] = r.email
        elif isinstance(r, Event) and r.id not in seen:
            seen.add(r.id)
            for customer, n in ranked(streams.get(r.artistid, Counter()), reached.get(r.artistid, {})):
                out.append((customer, {"customerid": customer, "email": email.get(customer), "eventid": r.id,
                                       "artistid": r.artistid, "venueid": r.venueid,
                                       "eventdate": eventdate(r.eventdate), "streams": n}))
    return out


def eventdate(text: str | None) -> str | None:
    """An input eventdate as outputs write it: ISO-8601 UTC, null when unknown (zone-less dates in UTC)."""
    try:
        return None if text is None else format_instant(parse_eventdate(text))
    except UnknownDate:
        return None


def top_artists(records: list) -> dict:
    """most_streamed_artists/top-artists: the last value of the one `global` key."""
    counts: Counter = Counter()
    reached: dict[str, int] = {}
    names: dict[str, str | None] = {}
    for position, r in enumerate(records):
        if isinstance(r, Stream):
            counts[r.artistid] += 1
            reached[r.artistid] = position
        elif isinstance(r, Artist):
            names[r.id] = r.name
    return {"top": [{"artistid": a, "name": names.get(a), "streams": n} for a, n in ranked(counts, reached)]}


def customers_by_top_artist(streams: list[Stream]) -> dict[str, dict]:
    """most_streamed_artists/customers-by-top-artist: the last value per artist ever someone's #1."""
    counts: dict[str, Counter] = {}
    reached: dict[str, dict] = {}
    number_one: dict[str, str] = {}
    ever: set[str] = set()
    for position, s in enumerate(streams):
        counts.setdefault(s.customerid, Counter())[s.artistid] += 1
        reached.setdefault(s.customerid, {})[s.artistid] = position
        number_one[s.customerid] = ranked(counts[s.customerid], reached[s.customerid], 1)[0][0]
        ever.add(number_one[s.customerid])
    return {a: {"artistid": a, "customers": sorted(c for c, top in number_one.items() if top == a)} for a in ever}


def trending_artists(records: list, times: list[int]) -> list[tuple[str, dict]]:
    """most_streamed_artists/trending-artists when every window closes at the end (names then final).

    `times[i]` is the i-th record's stream time in epoch ms; a stream older than the newest before it
    minus 5 minutes is late.
    """
    hour = 3_600_000
    windows: dict[int, tuple[Counter, dict]] = {}
    names: dict[str, str | None] = {}
    newest = None
    for position, (r, at) in enumerate(zip(records, times)):
        if isinstance(r, Artist):
            names[r.id] = r.name
        elif isinstance(r, Stream):
            if newest is not None and at < newest - 300_000:
                continue
            newest = at if newest is None else max(newest, at)
            counts, reached = windows.setdefault(at - at % hour, (Counter(), {}))
            counts[r.artistid] += 1
            reached[r.artistid] = position
    out = []
    for start, (counts, reached) in windows.items():
        begin = format_instant(datetime.fromtimestamp(start / 1000, UTC))
        end = format_instant(datetime.fromtimestamp((start + hour) / 1000, UTC))
        top = [{"artistid": a, "name": names.get(a), "streams": n} for a, n in ranked(counts, reached)]
        out.append((begin, {"window_start": begin, "window_end": end, "top": top}))
    return out
