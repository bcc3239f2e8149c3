"""Plain reference computations of docs/outputs.md#outputs, written for clarity, not speed.

Property tests compare the dataflows with these on random input. They work on the decoded,
good records in input order, and share no code with the dataflows' state classes.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from utopia.dates import UnknownDate, format_instant, parse_eventdate
from utopia.models import Address, Artist, Email, Event, Stream, Ticket


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
        value = {
            "ticketid": t.id,
            "eventid": t.eventid,
            "customerid": t.customerid,
            "status": status,
            "remaining": remaining,
        }
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
        for kind, reached in (
            ("NEARLY_SOLD_OUT", 10 * sold[e.id] >= 9 * e.capacity),
            ("SOLD_OUT", sold[e.id] >= e.capacity),
        ):
            if reached and (e.id, kind) not in alerted:
                alerted.add((e.id, kind))
                out.append(
                    (
                        e.id,
                        {
                            "eventid": e.id,
                            "artistid": e.artistid,
                            "venueid": e.venueid,
                            "capacity": e.capacity,
                            "sold": sold[e.id],
                            "remaining": max(e.capacity - sold[e.id], 0),
                            "alert": kind,
                        },
                    )
                )

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
                out.append(
                    (
                        customer,
                        {
                            "customerid": customer,
                            "email": email.get(customer),
                            "eventid": r.id,
                            "artistid": r.artistid,
                            "venueid": r.venueid,
                            "eventdate": eventdate(r.eventdate),
                            "streams": n,
                        },
                    )
                )
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


def global_totals(records: list, now: datetime) -> dict | None:
    """global_totals/global-totals: the last value but `as_of`, with the clock at `now`; None without a record.

    Customers and events count once per id; streams count each record; a ticket counts if its event
    comes at all, before or after it. An event has occurred if its latest record's date is before `now`.
    """
    from utopia.models import Customer  # imported here: this function was appended after the others

    if not records:
        return None
    latest_date: dict[str, datetime | None] = {}
    for r in records:
        if isinstance(r, Event):
            try:
                latest_date[r.id] = None if r.eventdate is None else parse_eventdate(r.eventdate)
            except UnknownDate:
                latest_date[r.id] = None
    return {
        "customers": len({r.id for r in records if isinstance(r, Customer)}),
        "streams": len([r for r in records if isinstance(r, Stream)]),
        "events": len(latest_date),
        "tickets": len([r for r in records if isinstance(r, Ticket) and r.eventid in latest_date]),
        "events_occurred": len([d for d in latest_date.values() if d is not None and d < now]),
    }


def must_see_venue(records: list) -> dict[str, dict]:
    """must_see_venue/must-see-venue: the last value per metric from the good venues, events and tickets in input order.

    An event counts for the venue it was first seen with; a ticket waits for its event and counts
    (its customer, once per venue) when it is released; the leader is ranked as everywhere.
    """
    from utopia.models import Venue  # imported here: this function was appended after the others

    venue_of: dict[str, str] = {}
    waiting: dict[str, list[Ticket]] = {}
    names: dict[str, str | None] = {}
    counts = {"events": Counter(), "customers": Counter()}
    reached: dict[str, dict] = {"events": {}, "customers": {}}
    holders: set = set()

    def hold_ticket(t: Ticket, position: int) -> None:
        venue = venue_of[t.eventid]
        if (venue, t.customerid) not in holders:
            holders.add((venue, t.customerid))
            counts["customers"][venue] += 1
            reached["customers"][venue] = position

    for position, r in enumerate(records):
        if isinstance(r, Venue):
            names[r.id] = r.name
        elif isinstance(r, Event) and r.id not in venue_of:
            venue_of[r.id] = r.venueid
            counts["events"][r.venueid] += 1
            reached["events"][r.venueid] = position
            for t in waiting.pop(r.id, []):
                hold_ticket(t, position)
        elif isinstance(r, Ticket):
            if r.eventid in venue_of:
                hold_ticket(r, position)
            else:
                waiting.setdefault(r.eventid, []).append(r)
    out = {}
    for metric in ("events", "customers"):
        if counts[metric]:
            [(venue, n)] = ranked(counts[metric], reached[metric], 1)
            out[metric] = {"metric": metric, "venueid": venue, "name": names.get(venue), "count": n}
    return out


def genre_event_suggestions(records: list) -> tuple[list[tuple[str, dict]], list[tuple[str, str]]]:
    """suggested_events_genre: the alerts, and (record id, reason) of each record still waiting at the end.

    From the good artists, events, streams and tickets in input order. Streams and events wait for
    their artist's genre (the latest artist record's genre, when not null) and are applied when it
    comes; tickets wait for their event with a capacity. A customer's top genre is ranked by stream
    count, then by who reached it first in processing order (a released stream counts when released).
    """
    genre: dict[str, str | None] = {}
    counts: dict[str, Counter] = {}
    reached: dict[str, dict] = {}
    applied = 0  # processing order of counted streams
    event_artist: dict[str, str] = {}
    capacity: dict[str, int | None] = {}
    sold: Counter = Counter()
    announced: set[str] = set()
    popular: set[str] = set()
    waiting_genre: dict[str, list] = {}
    waiting_event: dict[str, list[Ticket]] = {}
    out = []

    def top_genre(customer: str) -> str | None:
        if customer not in counts:
            return None
        return ranked(counts[customer], reached[customer], 1)[0][0]

    def tell(eventid: str, kind: str, g: str) -> None:
        for customer in counts:
            if top_genre(customer) == g:
                out.append(
                    (
                        customer,
                        {
                            "customerid": customer,
                            "eventid": eventid,
                            "artistid": event_artist[eventid],
                            "genre": g,
                            "reason": kind,
                        },
                    )
                )

    def count(s: Stream) -> None:
        nonlocal applied
        g = genre[s.artistid]
        counts.setdefault(s.customerid, Counter())[g] += 1
        reached.setdefault(s.customerid, {})[g] = applied
        applied += 1

    def see(e: Event) -> None:
        if e.id not in announced:
            announced.add(e.id)
            tell(e.id, "NEW_EVENT", genre[event_artist[e.id]])

    def sell(t: Ticket) -> None:
        sold[t.eventid] += 1
        if t.eventid not in popular and 10 * sold[t.eventid] >= 9 * capacity[t.eventid]:
            popular.add(t.eventid)
            g = genre.get(event_artist[t.eventid])
            if g is not None:
                tell(t.eventid, "POPULAR_EVENT", g)

    for r in records:
        if isinstance(r, Artist):
            genre[r.id] = r.genre
            if r.genre is not None:
                for held in waiting_genre.pop(r.id, []):
                    count(held) if isinstance(held, Stream) else see(held)
        elif isinstance(r, Stream):
            if genre.get(r.artistid) is None:
                waiting_genre.setdefault(r.artistid, []).append(r)
            else:
                count(r)
        elif isinstance(r, Event):
            artist = event_artist.setdefault(r.id, r.artistid)
            capacity[r.id] = r.capacity
            if r.capacity is not None:
                for t in waiting_event.pop(r.id, []):
                    sell(t)
            if genre.get(artist) is None:
                waiting_genre.setdefault(artist, []).append(r)
            else:
                see(r)
        elif isinstance(r, Ticket):
            if capacity.get(r.eventid) is None:
                waiting_event.setdefault(r.eventid, []).append(r)
            else:
                sell(r)
    unfinished = [
        (r.id, f"waited for the genre of artist {a}, which never arrived")
        for a, held in waiting_genre.items()
        for r in held
    ]
    unfinished += [
        (t.id, f"waited for event {e}, which never arrived")
        for e, held in waiting_event.items()
        for t in held
        if e not in capacity
    ]
    unfinished += [
        (t.id, f"waited for the capacity of event {e}, which never arrived (the event's capacity is null)")
        for e, held in waiting_event.items()
        for t in held
        if e in capacity
    ]
    return out, unfinished


def location_outputs(records: list) -> tuple[dict[str, dict], list[tuple[str, dict]], list[tuple[str, str]]]:
    """suggested_events_location: tickets per zip, the alerts, and (ticket id, reason) of each ticket still waiting.

    From the good addresses, events and tickets in input order. A ticket waits for its event with a
    capacity, then for its buyer's home (the RESID address applied last for them); it is processed
    right after the record that completes it, with the others that record completes in input order.
    """
    capacity: dict[str, int | None] = {}
    home: dict[str, str] = {}
    sold: Counter = Counter()
    holds: set[tuple[str, str]] = set()
    told: set[tuple[str, str]] = set()
    per_zip: Counter = Counter()
    waiting_event: dict[str, list[tuple[int, Ticket]]] = {}
    waiting_home: dict[str, list[tuple[int, Ticket]]] = {}
    alerts = []

    def process(t: Ticket) -> None:
        zip5 = home[t.customerid]
        per_zip[zip5] += 1
        sold[t.eventid] += 1
        holds.add((t.customerid, t.eventid))
        if 10 * sold[t.eventid] >= 9 * capacity[t.eventid]:
            for customer, where in home.items():
                if (
                    where == zip5
                    and customer != t.customerid
                    and (customer, t.eventid) not in holds
                    and (customer, t.eventid) not in told
                ):
                    told.add((customer, t.eventid))
                    alerts.append(
                        (
                            customer,
                            {
                                "customerid": customer,
                                "zip5": zip5,
                                "eventid": t.eventid,
                                "buyer_customerid": t.customerid,
                            },
                        )
                    )

    def ready(position: int, t: Ticket) -> None:
        if capacity.get(t.eventid) is None:
            waiting_event.setdefault(t.eventid, []).append((position, t))
        elif t.customerid not in home:
            waiting_home.setdefault(t.customerid, []).append((position, t))
        else:
            process(t)

    for position, r in enumerate(records):
        if isinstance(r, Address):
            if r.type == "RESID":
                home[r.customerid] = r.zip5
                for held in sorted(waiting_home.pop(r.customerid, []), key=lambda pt: pt[0]):
                    ready(*held)
        elif isinstance(r, Event):
            capacity[r.id] = r.capacity
            if r.capacity is not None:
                for held in sorted(waiting_event.pop(r.id, []), key=lambda pt: pt[0]):
                    ready(*held)
        elif isinstance(r, Ticket):
            ready(position, r)
    counts = {z: {"zip5": z, "tickets": n} for z, n in per_zip.items()}
    unfinished = [
        (t.id, f"waited for event {e}, which never arrived")
        for e, held in waiting_event.items()
        for _, t in held
        if e not in capacity
    ]
    unfinished += [
        (t.id, f"waited for the capacity of event {e}, which never arrived (the event's capacity is null)")
        for e, held in waiting_event.items()
        for _, t in held
        if e in capacity
    ]
    unfinished += [
        (t.id, f"waited for the RESID address of customer {c}, which never arrived")
        for c, held in waiting_home.items()
        for _, t in held
    ]
    return counts, alerts, unfinished
