"""What each scenario found, in a sentence or two, for the end of `make demo`.

The summaries before it count records; this says what they mean ("3 events sold out"), so that a
first-time reader sees each dataflow's point without opening a file. Each teller is a pure function
of one dataflow's outputs, as `TestingIO.outputs` holds them: output name -> its (key, value) records
in the order written. A changelog is read as its latest value per key, as a consumer would.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Generic, TypeVar

import msgspec

from utopia.config import Topics
from utopia.models import OUTPUT_RECORDS, NamedArtistStreams
from utopia.steps import Out

T = TypeVar("T")
Outputs = Mapping[str, list[Out]]
"""One dataflow's outputs: output name (without prefix and suffix) -> its (key, value) records in order."""


class _Line(msgspec.Struct, Generic[T]):
    key: str | None
    value: T


def read_outputs(directory: Path, topics: Topics) -> Outputs:
    """The output files of one file-mode run (docs/outputs.md#file-mode), decoded as their models."""
    outputs: dict[str, list[Out]] = defaultdict(list)
    for name, model in OUTPUT_RECORDS.items():
        path = directory / f"{topics.output(name)}.jsonl"
        if path.exists():
            decoder = msgspec.json.Decoder(_Line[model])  # type: ignore[valid-type]  # a type chosen at run time
            outputs[name] = [(line.key, line.value) for line in map(decoder.decode, path.read_bytes().splitlines())]
    return outputs


def _values(outputs: Outputs, name: str) -> list:
    return [value for _, value in outputs.get(name, [])]


def _latest(outputs: Outputs, name: str) -> list:
    """A changelog's latest value per key, in the order the keys first appeared."""
    return list(dict(outputs.get(name, [])).values())


def _most(counts: Mapping[str, int]) -> tuple[str, int]:
    """The key with the highest count; ties go to the smallest key, so that every run says the same."""
    return min(counts.items(), key=lambda item: (-item[1], item[0]))


def _named(artist: NamedArtistStreams) -> str:
    return artist.name or artist.artistid


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def customer_stream_count(outputs: Outputs) -> str:
    counts = {count.customerid: count.streams for count in _latest(outputs, "customer-stream-count")}
    if not counts:
        return "No streams."
    customer, most = _most(counts)
    return (
        f"{_plural(sum(counts.values()), 'stream')} by {_plural(len(counts), 'customer')}; "
        f"the most active, {customer}, streamed {_plural(most, 'time')}."
    )


def top_customer_artists(outputs: Outputs) -> str:
    tops = [ranking.top[0].artistid for ranking in _latest(outputs, "top-customer-artists") if ranking.top]
    if not tops:
        return "No customer has streamed yet."
    artist, fans = _most(Counter(tops))
    return f"{_plural(len(tops), 'customer')} ranked their artists; {artist} is the #1 of {fans:,} of them."


def purchase_event_ticket(outputs: Outputs) -> str:
    responses = _values(outputs, "ticket-response")
    statuses = Counter(response.status for response in responses)
    sold_out = {response.eventid for response in responses if response.remaining == 0}
    return (
        f"{_plural(statuses['CONFIRMED'], 'ticket')} confirmed, {statuses['REJECTED']:,} rejected "
        f"({_plural(len(sold_out), 'event')} sold out)."
    )


def sold_out(outputs: Outputs) -> str:
    alerts = _values(outputs, "event-alerts")
    nearly = {alert.eventid for alert in alerts}
    full = {alert.eventid for alert in alerts if alert.alert == "SOLD_OUT"}
    fans = _values(outputs, "event-streamer-alerts")
    return (
        f"{_plural(len(nearly), 'event')} reached 90% of their capacity, {len(full):,} sold out; "
        f"{_plural(len(fans), 'top fan')} told about {_plural(len({fan.eventid for fan in fans}), 'new event')}."
    )


def most_streamed_artists(outputs: Outputs) -> str:
    overall = _latest(outputs, "top-artists")
    if not overall or not overall[0].top:
        return "No streams."
    first = overall[0].top[0]
    text = f"Most streamed: {_named(first)} ({_plural(first.streams, 'stream')})"
    hours = [hour for hour in _values(outputs, "trending-artists") if hour.top]
    if not hours:
        return text + "."
    last = max(hours, key=lambda hour: hour.window_start)
    return text + f"; trending in the last hour ({last.window_start}): {_named(last.top[0])}."


def must_see_venue(outputs: Outputs) -> str:
    leaders = {leader.metric: leader for leader in _latest(outputs, "must-see-venue")}
    if not leaders:
        return "No events yet."
    said = {"events": "Venue with most events", "customers": "with most ticket holders"}
    return (
        "; ".join(
            f"{words}: {leader.name or leader.venueid} ({leader.count:,})"
            for metric, words in said.items()
            if (leader := leaders.get(metric))
        )
        + "."
    )


def global_totals(outputs: Outputs) -> str:
    totals = _latest(outputs, "global-totals")
    if not totals:
        return "Nothing counted."
    last = totals[-1]
    return (
        f"{_plural(last.customers, 'customer')}, {_plural(last.streams, 'stream')}, "
        f"{_plural(last.tickets, 'ticket')} and {_plural(last.events, 'event')} "
        f"({last.events_occurred:,} already past)."
    )


def suggested_events_genre(outputs: Outputs) -> str:
    suggestions = _values(outputs, "genre-event-suggestions")
    reasons = Counter(suggestion.reason for suggestion in suggestions)
    customers = len({suggestion.customerid for suggestion in suggestions})
    return (
        f"{_plural(len(suggestions), 'suggestion')} sent to {_plural(customers, 'customer')}: "
        f"{reasons['NEW_EVENT']:,} new events, {reasons['POPULAR_EVENT']:,} popular ones."
    )


def suggested_events_location(outputs: Outputs) -> str:
    per_zip = {count.zip5: count.tickets for count in _latest(outputs, "zipcode-tickets")}
    alerts = _plural(len(_values(outputs, "zipcode-popular-event-alerts")), "popular-event alert")
    if not per_zip:
        return f"No ticket located; {alerts}."
    busiest, tickets = _most(per_zip)
    return f"Busiest zip: {busiest} ({_plural(tickets, 'ticket')}); {alerts} to neighbours."


TELLERS: dict[str, Callable[[Outputs], str]] = {
    teller.__name__: teller
    for teller in (
        customer_stream_count,
        top_customer_artists,
        purchase_event_ticket,
        sold_out,
        most_streamed_artists,
        must_see_venue,
        global_totals,
        suggested_events_genre,
        suggested_events_location,
    )
}
"""Dataflow name -> what its outputs say."""


def story(runs: Iterable[tuple[str, Outputs]]) -> list[str]:
    """One line per dataflow run: its name and what it found."""
    return [f"  {name}: {TELLERS[name](outputs)}" for name, outputs in runs]
