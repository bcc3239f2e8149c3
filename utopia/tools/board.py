"""What `utopia watch` knows about the outputs: the latest totals, rankings and alerts, and the output rates.

Kept apart from drawing (utopia.tools.dashboard) and from reading Kafka or files (utopia.tools.watch), so the
rules of what is shown are tested with exact records: the latest value per key of a changelog
(docs/outputs.md#outputs), the newest hour of trending-artists, the last few alerts, and how many
records each output got over the last complete seconds.
"""

from __future__ import annotations

from collections import Counter, deque

from utopia.models import (
    DeadLetter,
    EventAlert,
    EventStreamerAlert,
    GenreEventSuggestion,
    GlobalTotals,
    MustSeeVenue,
    Output,
    TopArtists,
    TrendingArtists,
    ZipcodePopularEventAlert,
    ZipcodeTickets,
)

RATE_WINDOW_S = 5
"""Rates are records per second over this many complete seconds, so one busy second does not jump out."""
RECENT = 3
"""How many of the latest alerts of each kind and suggestions are kept."""

WHOLE_HISTORY = frozenset(
    {"global-totals", "top-artists", "trending-artists", "must-see-venue", "zipcode-tickets", "dead-letters"}
)
"""Outputs the board needs from their first record: it shows a latest value per key, the newest window, or a count.
Of the others it shows only rates and the latest few, which the last records give."""


class Board:
    """The state of the dashboard, built from output records (output name, value, when written).

    Keys are not needed: every key this board tells apart is in the value too (a venue's metric, a zip code).
    `timed`: the records come with when they were written (Kafka's timestamps), so the board has
    rates, and the outputs are live (trending hours close by the clock); a file-mode run's lines
    say neither, so they are counted, and its hours all closed at the end of its input.
    """

    def __init__(self, timed: bool = True) -> None:
        self.timed = timed
        self.totals: GlobalTotals | None = None
        self.top_artists: TopArtists | None = None
        self.trending: TrendingArtists | None = None
        self.venues: dict[str, MustSeeVenue] = {}  # by metric: events, customers
        self.zip_tickets: dict[str, int] = {}
        self.event_alerts: deque[EventAlert] = deque(maxlen=RECENT)
        self.streamer_alerts: deque[EventStreamerAlert] = deque(maxlen=RECENT)
        self.zipcode_alerts: deque[ZipcodePopularEventAlert] = deque(maxlen=RECENT)
        self.suggestions: deque[GenreEventSuggestion] = deque(maxlen=RECENT)
        self.dead_letters = 0
        self.dead_letters_by_dataflow: Counter[str] = Counter()
        self.unreadable = 0  # records whose value is not the output's (docs/outputs.md), skipped
        self.records: Counter[str] = Counter()  # output -> records read
        self._written: dict[str, Counter[int]] = {}  # output -> records per whole second of writing

    def add(self, output: str, value: Output, written_at: float | None = None) -> None:
        """One output record; `written_at` is when it was written (epoch seconds), for the rates, if known."""
        self.records[output] += 1
        if written_at is not None:
            self._written.setdefault(output, Counter())[int(written_at)] += 1
        match value:
            case GlobalTotals():
                self.totals = value
            case TopArtists():
                self.top_artists = value
            case TrendingArtists() if self.trending is None or value.window_start >= self.trending.window_start:
                self.trending = value  # ISO-8601 UTC texts of one form sort as their instants
            case MustSeeVenue():
                self.venues[value.metric] = value
            case ZipcodeTickets():
                self.zip_tickets[value.zip5] = value.tickets
            case EventAlert():
                self.event_alerts.append(value)
            case EventStreamerAlert():
                self.streamer_alerts.append(value)
            case ZipcodePopularEventAlert():
                self.zipcode_alerts.append(value)
            case GenreEventSuggestion():
                self.suggestions.append(value)
            case DeadLetter():
                self.dead_letters += 1
                self.dead_letters_by_dataflow[value.dataflow] += 1

    def rate(self, output: str, now: float) -> float:
        """Records per second written to `output` in the RATE_WINDOW_S whole seconds before the current one."""
        seconds = self._written.get(output)
        if not seconds:
            return 0.0
        current = int(now)
        for second in [s for s in seconds if s < current - RATE_WINDOW_S]:
            del seconds[second]  # too old to count again
        return sum(seconds[s] for s in range(current - RATE_WINDOW_S, current)) / RATE_WINDOW_S

    def busiest_zips(self, count: int) -> list[tuple[str, int]]:
        """The zip codes with the most tickets, most first; equal counts by zip code."""
        return sorted(self.zip_tickets.items(), key=lambda item: (-item[1], item[0]))[:count]
