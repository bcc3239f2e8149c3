"""Drawing the Board with rich: one frame of `utopia watch`, a pure function of the board and the time."""

from __future__ import annotations

from collections.abc import Sequence

from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from utopia.models import OUTPUT_RECORDS, NamedArtistStreams
from utopia.tools.board import RATE_WINDOW_S, Board

BUSIEST_ZIPS = 5
RATE_COLUMNS = 2
_NONE = "[dim]none yet[/]"


def render(board: Board, now: float, title: str, notes: Sequence[str] = ()) -> RenderableType:
    """The whole frame: totals on top, then rankings, alerts, and the rates of every output."""
    return Group(
        Panel(_totals(board), title=title, title_align="left"),
        Columns([*_artists(board), _venues(board), _zips(board)], padding=(1, 2)),
        _recent(board),
        _rates(board, now),
        *(Text(note, style="yellow") for note in notes),
    )


def _totals(board: Board) -> RenderableType:
    totals = board.totals
    if totals is None:
        return Text.from_markup(f"global totals: {_NONE}")
    return Text.from_markup(
        f"[b]{totals.customers:,}[/] customers   [b]{totals.streams:,}[/] streams   [b]{totals.events:,}[/] events "
        f"([b]{totals.events_occurred:,}[/] taken place)   [b]{totals.tickets:,}[/] tickets   "
        f"[dim]as of {totals.as_of}[/]"
    )


def _table(title: str, *columns: str) -> Table:
    """A titled table; a column named with a leading `>` is a number, right-justified."""
    table = Table(title=title, title_justify="left", show_edge=False)
    for column in columns:
        table.add_column(column.lstrip(">"), justify="right" if column.startswith(">") else "left")
    return table


def _filled(table: Table) -> Table:
    """The table, saying so when it has no rows yet."""
    if not table.row_count:
        table.caption, table.caption_justify = _NONE, "left"
    return table


def _ranking(title: str, top: list[NamedArtistStreams]) -> Table:
    table = _table(title, ">#", "artist", ">streams")
    for rank, artist in enumerate(top, 1):
        table.add_row(str(rank), artist.name or artist.artistid, f"{artist.streams:,}")
    return _filled(table)


def _artists(board: Board) -> list[Table]:
    top = board.top_artists.top if board.top_artists else []
    trending = board.trending
    hour = f"trending {trending.window_start[11:16]}-{trending.window_end[11:16]} UTC" if trending else "trending"
    return [_ranking("top artists", top), _ranking(hour, trending.top if trending else [])]


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
        _latest("event alerts", [f"{a.alert} {a.eventid}: {a.sold:,} of {a.capacity:,} sold"
                                 for a in board.event_alerts]),
        _latest("top streamers told of a new event", [f"{a.customerid}: {a.eventid} of {a.artistid} "
                                                      f"({a.streams:,} streams)" for a in board.streamer_alerts]),
        _latest("neighbours told of a popular event", [
            f"{a.customerid} in {a.zip5}: {a.eventid} (bought by {a.buyer_customerid})"
            for a in board.zipcode_alerts]),
        _latest("suggestions", [f"{s.reason} {s.eventid} ({s.genre}) for {s.customerid}" for s in board.suggestions]),
    ]
    grid.add_row(latest[0], latest[2])
    grid.add_row(latest[1], latest[3])
    return grid


def _rates(board: Board, now: float) -> RenderableType:
    table = Table(title=f"records/s written (last {RATE_WINDOW_S} s)", title_justify="left", show_edge=False,
                  show_header=False)
    for _ in range(RATE_COLUMNS):
        table.add_column()
        table.add_column(justify="right")
    outputs = list(OUTPUT_RECORDS)
    rows = -(-len(outputs) // RATE_COLUMNS)
    for row in range(rows):
        names = outputs[row::rows]
        table.add_row(*(cell for name in names for cell in (name, f"{board.rate(name, now):,.1f}")))
    by_dataflow = ", ".join(f"{name} {count:,}" for name, count in board.dead_letters_by_dataflow.most_common())
    dead = f"[b]{board.dead_letters:,}[/] dead letters" + (f" ({by_dataflow})" if by_dataflow else "")
    unreadable = f", {board.unreadable:,} unreadable records skipped" if board.unreadable else ""
    return Group(table, Text.from_markup(dead + unreadable))
