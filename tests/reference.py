"""Plain reference computations of SPEC section 2, written for clarity, not speed.

Property tests compare the dataflows with these on random input. They work on the decoded,
good records in input order, and share no code with the dataflows' state classes.
"""

from __future__ import annotations

from collections import Counter

from utopia.models import Event, Stream, Ticket


def ranked(counts: Counter, reached: dict, n: int = 3) -> list[tuple[str, int]]:
    """Higher count first; on equal counts, the one that reached that count first (SPEC ranking rule)."""
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
