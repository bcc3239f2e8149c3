"""Drawing the Board with rich: one frame of `utopia watch`, a pure function of the board and the time.

On a terminal too small for the whole frame, the least important sections are left out and named
on a line of their own, so nothing is cut off at the bottom (`render`'s `height`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from rich.columns import Columns
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from utopia.models import OUTPUT_RECORDS, NamedArtistStreams
from utopia.rules.trending import HOUR_MS, WAIT_MS
from utopia.tools.board import RATE_WINDOW_S, Board

BUSIEST_ZIPS = 5
RATE_COLUMNS = 2
_NONE = "[dim]none yet[/]"


class Section(NamedTuple):
    """A part of the frame; on a small terminal, those of the highest `rank` are left out first."""

    name: str
    rank: int
    body: RenderableType


def render(
    board: Board, now: float, title: str, notes: Sequence[str] = (), height: int | None = None
) -> RenderableType:
    """The whole frame: totals on top, then rankings, alerts, the rates of every output, and the notes.

    With `height` (a terminal's), only what fits in that many lines. Most important first: the
    notes (why the numbers may be wrong), the totals, the dead letters, the artists, the latest
    alerts, the venues and zip codes, and last the rates.
    """
    sections = [
        Section("totals", 1, _totals(board, title)),
        Section("artists", 3, Columns(_artists(board, now), padding=(0, 4))),
        Section("venues and zip codes", 5, Columns([_venues(board), _zips(board)], padding=(0, 4))),
        Section("latest alerts", 4, _recent(board)),
        Section("records/s" if board.timed else "records read", 6, _per_output(board, now)),
        Section("dead letters", 2, _dead_letters(board)),
        Section("notes", 0, Group(*(Text(note, style="yellow") for note in notes))),
    ]
    if height is None:
        return Group(*(section.body for section in sections))
    return _Fitted(sections, height)


class _Fitted:
    """Sections, in their order, as many as fit in `height` lines by rank; the others named on the last line."""

    def __init__(self, sections: list[Section], height: int):
        self.sections, self.height = sections, height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        drawn = [console.render_lines(section.body, options, pad=False) for section in self.sections]
        shown = set(range(len(drawn)))
        if sum(map(len, drawn)) > self.height:
            room, shown = self.height - 1, set()  # a line to name what is left out
            for index in sorted(range(len(drawn)), key=lambda i: self.sections[i].rank):
                if len(drawn[index]) <= room:
                    room -= len(drawn[index])
                    shown.add(index)
        for index, lines in enumerate(drawn):
            if index in shown:
                for line in lines:
                    yield from line
                    yield Segment.line()
        hidden = [section.name for index, section in enumerate(self.sections) if index not in shown]
        if hidden:
            yield Text(
                f"not shown for want of room: {', '.join(hidden)}", style="dim", no_wrap=True, overflow="ellipsis"
            )


def _totals(board: Board, title: str) -> Panel:
    """The totals, under the title; when they were computed on the frame, to keep them on one line."""
    totals = board.totals
    if totals is None:
        return Panel(Text.from_markup(f"global totals: {_NONE}"), title=title, title_align="left")
    return Panel(
        Text.from_markup(
            f"[b]{totals.customers:,}[/] customers   [b]{totals.streams:,}[/] streams   [b]{totals.events:,}[/] events "
            f"([b]{totals.events_occurred:,}[/] taken place)   [b]{totals.tickets:,}[/] tickets"
        ),
        title=title,
        title_align="left",
        subtitle=f"[dim]as of {totals.as_of}[/]",
        subtitle_align="right",
    )


def _table(title: str, *columns: str) -> Table:
    """A titled table; a column named with a leading `>` is a number, right-justified."""
    table = Table(title=title, title_justify="left", show_edge=False, min_width=len(title))
    for column in columns:
        table.add_column(column.lstrip(">"), justify="right" if column.startswith(">") else "left")
    return table


def _filled(table: Table, why: str = "") -> Table:
    """The table, saying so when it has no rows yet (and `why`, if there is something to say)."""
    if not table.row_count:
        table.caption, table.caption_justify = _NONE + why, "left"
        table.min_width = max(table.min_width or 0, Text.from_markup(table.caption).cell_len)
    return table


def _ranking(title: str, top: list[NamedArtistStreams], why: str = "") -> Table:
    table = _table(title, ">#", "artist", ">streams")
    for rank, artist in enumerate(top, 1):
        table.add_row(str(rank), artist.name or artist.artistid, f"{artist.streams:,}")
    return _filled(table, why)


def _artists(board: Board, now: float) -> list[Table]:
    top = _ranking("top artists", board.top_artists.top if board.top_artists else [])
    trending = board.trending
    if trending is not None:
        return [
            top,
            _ranking(f"trending {trending.window_start[11:16]}-{trending.window_end[11:16]} UTC", trending.top),
        ]
    if not board.timed:  # a file-mode run closed every hour at the end of its input: there were no streams
        return [top, _ranking("trending", [])]
    start = datetime.fromtimestamp(now - now % (HOUR_MS / 1000), UTC)
    end, closing = start + timedelta(milliseconds=HOUR_MS), start + timedelta(milliseconds=HOUR_MS + WAIT_MS)
    return [top, _ranking(f"trending {start:%H:%M}-{end:%H:%M} UTC", [], f", closes at {closing:%H:%M}")]


def _venues(board: Board) -> Table:
    table = _table("must-see venues", "most", "venue", ">count")
    for metric in ("events", "customers"):
        venue = board.venues.get(metric)
        if venue:
            table.add_row(metric, venue.name or venue.venueid, f"{venue.count:,}")
    return _filled(table)


def _zips(board: Board) -> Table:
    table = _table("busiest zip codes", "zip", ">tickets")
    for zip5, tickets in board.busiest_zips(BUSIEST_ZIPS):
        table.add_row(zip5, f"{tickets:,}")
    return _filled(table)


def _latest(title: str, lines: list[str]) -> Text:
    return Text.from_markup(f"[b]{title}[/]\n" + ("\n".join(reversed(lines)) or _NONE))


def _recent(board: Board) -> RenderableType:
    """Newest first, in two columns to keep the frame short."""
    grid = Table.grid(padding=(0, 4))
    for _ in range(2):
        grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    latest = [
        _latest(
            "event alerts", [f"{a.alert} {a.eventid}: {a.sold:,} of {a.capacity:,} sold" for a in board.event_alerts]
        ),
        _latest(
            "top streamers told of a new event",
            [f"{a.customerid}: {a.eventid} of {a.artistid} ({a.streams:,} streams)" for a in board.streamer_alerts],
        ),
        _latest(
            "neighbours told of a popular event",
            [f"{a.customerid} in {a.zip5}: {a.eventid} (bought by {a.buyer_customerid})" for a in board.zipcode_alerts],
        ),
        _latest("suggestions", [f"{s.reason} {s.eventid} ({s.genre}) for {s.customerid}" for s in board.suggestions]),
    ]
    grid.add_row(latest[0], latest[2])
    grid.add_row(latest[1], latest[3])
    return grid


def _per_output(board: Board, now: float) -> Table:
    """Records per second written to each output; counts of the records read where no rate is known (files)."""
    if board.timed:
        title, cell = f"records/s written (last {RATE_WINDOW_S} s)", lambda name: f"{board.rate(name, now):,.1f}"
    else:
        title, cell = "records read", lambda name: f"{board.records[name]:,}"
    table = Table(title=title, title_justify="left", show_edge=False, show_header=False)
    for _ in range(RATE_COLUMNS):
        table.add_column()
        table.add_column(justify="right")
    outputs = list(OUTPUT_RECORDS)
    rows = -(-len(outputs) // RATE_COLUMNS)
    for row in range(rows):
        table.add_row(*(part for name in outputs[row::rows] for part in (name, cell(name))))
    return table


def _dead_letters(board: Board) -> Text:
    by_dataflow = ", ".join(f"{name} {count:,}" for name, count in board.dead_letters_by_dataflow.most_common())
    dead = f"[b]{board.dead_letters:,}[/] dead letters" + (f" ({by_dataflow})" if by_dataflow else "")
    unreadable = f", {board.unreadable:,} unreadable records skipped" if board.unreadable else ""
    return Text.from_markup(dead + unreadable)
