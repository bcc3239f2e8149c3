"""`utopia watch`: what the board keeps of the outputs, and what the dashboard shows, driven headless from files."""

import io
import signal
import subprocess
import sys
import time

import msgspec
import pytest
from rich.console import Console, RenderableType

from utopia.cli import dataflow_names, main, run_on_files
from utopia.config import Topics
from utopia.models import (
    DeadLetter,
    EventAlert,
    GlobalTotals,
    MustSeeVenue,
    NamedArtistStreams,
    TopArtists,
    TrendingArtists,
    ZipcodePopularEventAlert,
    ZipcodeTickets,
)
from utopia.tools.board import RATE_WINDOW_S, RECENT, Board
from utopia.tools.dashboard import render
from utopia.tools.generator import Sizes
from utopia.tools.live_demo import commands, start, stop, stopped
from utopia.tools.loading import write_dir
from utopia.tools.watch import FileOutputs, watch

T = 1_764_000_000.0  # a whole second
TOTALS = GlobalTotals(
    customers=1234, streams=56789, events=42, tickets=4321, events_occurred=7, as_of="2026-11-24T01:02:03Z"
)


def totals(streams: int) -> GlobalTotals:
    return msgspec.structs.replace(TOTALS, streams=streams)


def artists(*top: tuple[str, str | None, int]) -> list[NamedArtistStreams]:
    return [NamedArtistStreams(artistid, name, streams) for artistid, name, streams in top]


def hour(start: int, *top: tuple[str, str | None, int]) -> TrendingArtists:
    return TrendingArtists(f"2026-11-24T{start:02d}:00:00Z", f"2026-11-24T{start + 1:02d}:00:00Z", artists(*top))


def event_alert(eventid: str, sold: int) -> EventAlert:
    return EventAlert(eventid, "a-7", "v-1", capacity=10, sold=sold, remaining=10 - sold, alert="NEARLY_SOLD_OUT")


# --- the board -------------------------------------------------------------------------------------------------


def test_changelogs_show_their_latest_value():
    board = Board()
    board.add("global-totals", totals(10), T)
    board.add("global-totals", totals(20), T)
    board.add("top-artists", TopArtists(artists(("a-1", "Ann", 5))), T)
    board.add("top-artists", TopArtists(artists(("a-2", "Bob", 9), ("a-1", "Ann", 5))), T)
    board.add("must-see-venue", MustSeeVenue("events", "v-1", "Hall", 3), T)
    board.add("must-see-venue", MustSeeVenue("customers", "v-2", None, 8), T)
    board.add("must-see-venue", MustSeeVenue("events", "v-3", "Arena", 4), T)
    assert board.totals.streams == 20
    assert [a.artistid for a in board.top_artists.top] == ["a-2", "a-1"]
    assert board.venues == {
        "events": MustSeeVenue("events", "v-3", "Arena", 4),
        "customers": MustSeeVenue("customers", "v-2", None, 8),
    }


def test_trending_shows_the_newest_hour_whatever_order_hours_come_in():
    board = Board()
    board.add("trending-artists", hour(2, ("a-1", "Ann", 3)), T)
    board.add("trending-artists", hour(1, ("a-2", "Bob", 9)), T)  # from another partition, later
    assert board.trending.window_start == "2026-11-24T02:00:00Z"
    board.add("trending-artists", hour(3, ("a-3", None, 1)), T)
    assert board.trending.top[0].artistid == "a-3"


def test_busiest_zips_by_latest_count_then_zip():
    board = Board()
    for zip5, tickets in [("80202", 5), ("10001", 7), ("60601", 7), ("80202", 9), ("94105", 1)]:
        board.add("zipcode-tickets", ZipcodeTickets(zip5, tickets), T)
    assert board.busiest_zips(3) == [("80202", 9), ("10001", 7), ("60601", 7)]


def test_alerts_keep_the_latest_few_of_each_kind():
    board = Board()
    for n in range(RECENT + 2):
        board.add("event-alerts", event_alert(f"e-{n}", 9), T)
    board.add("zipcode-popular-event-alerts", ZipcodePopularEventAlert("c-5", "80202", "e-1", "c-1"), T)
    assert [a.eventid for a in board.event_alerts] == [f"e-{n}" for n in range(2, RECENT + 2)]
    assert [a.customerid for a in board.zipcode_alerts] == ["c-5"]


def test_dead_letters_are_counted_by_dataflow():
    board = Board()
    for dataflow in ["sold_out", "sold_out", "global_totals"]:
        board.add("dead-letters", DeadLetter(dataflow, "data-demo-tickets", 0, 1, "t-1", "{", "not valid JSON"), T)
    assert board.dead_letters == 3
    assert board.dead_letters_by_dataflow == {"sold_out": 2, "global_totals": 1}


def test_rates_count_the_last_complete_seconds():
    board = Board()
    written = [T - RATE_WINDOW_S - 1, T - RATE_WINDOW_S, T - 3.5, T - 1, T - 0.5, T + 0.2]
    for at in written:
        board.add("ticket-response", event_alert("e-1", 1), at)
    # T - 6 is too old and T + 0.2 is in the current second: 4 records in the 5 complete seconds before it.
    assert board.rate("ticket-response", T + 0.5) == 4 / RATE_WINDOW_S
    assert board.rate("ticket-response", T + RATE_WINDOW_S + 1) == 0
    assert board.rate("event-alerts", T) == 0


def test_records_not_known_when_written_are_counted_not_rated():
    board = Board()
    board.add("event-alerts", event_alert("e-1", 1))  # a file's line
    board.add("event-alerts", event_alert("e-2", 1))
    board.add("event-alerts", event_alert("e-3", 1), T - 1)
    assert board.records == {"event-alerts": 3}
    assert board.rate("event-alerts", T + 0.5) == 1 / RATE_WINDOW_S


# --- the dashboard, headless, from files ---------------------------------------------------------------------


def write_outputs(directory, topics: Topics, records: dict[str, list]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for output, values in records.items():
        lines = [msgspec.json.encode({"key": None, "value": value}) + b"\n" for value in values]
        (directory / f"{topics.output(output)}.jsonl").write_bytes(b"".join(lines))


def frame(source, width: int = 140) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    watch(source, console, once=True)
    return console.export_text()


@pytest.fixture
def demo_out(tmp_path):
    """An output directory as `utopia demo` leaves it: one subdirectory of <topic>.jsonl files per dataflow."""
    topics = Topics()
    write_outputs(tmp_path / "global_totals", topics, {"global-totals": [totals(100), TOTALS]})
    write_outputs(
        tmp_path / "most_streamed_artists",
        topics,
        {
            "top-artists": [
                TopArtists(artists(("a-7", "The Bytes", 5120), ("a-2", None, 4980), ("a-9", "Offset Zero", 4980)))
            ],
            "trending-artists": [hour(1, ("a-9", "Offset Zero", 287)), hour(2, ("a-2", "Nine Lives", 31))],
        },
    )
    write_outputs(
        tmp_path / "must_see_venue",
        topics,
        {
            "must-see-venue": [
                MustSeeVenue("events", "v-1", "Red Rocks", 12),
                MustSeeVenue("customers", "v-2", "The Fillmore", 318),
            ]
        },
    )
    write_outputs(
        tmp_path / "sold_out",
        topics,
        {
            "event-alerts": [event_alert("e-17", 9)],
            "dead-letters": [DeadLetter("sold_out", "data-demo-tickets", 0, 3, None, "{", "not valid JSON")],
        },
    )
    write_outputs(
        tmp_path / "suggested_events_location",
        topics,
        {"zipcode-tickets": [ZipcodeTickets("80202", 318), ZipcodeTickets("10001", 99)]},
    )
    (tmp_path / "notes.jsonl").write_text("not an output\n")  # not an output topic's file: ignored
    return tmp_path


def test_a_frame_shows_totals_rankings_alerts_and_dead_letters(demo_out):
    text = frame(FileOutputs(demo_out, Topics()))
    for shown in [
        "1,234 customers",
        "56,789 streams",
        "42 events (7 taken place)",
        "4,321 tickets",
        "The Bytes",
        "5,120",
        "a-2",
        "Offset Zero",
        "trending 02:00-03:00 UTC",
        "Nine Lives",
        "Red Rocks",
        "The Fillmore",
        "318",
        "80202",
        "10001",
        "NEARLY_SOLD_OUT e-17: 9 of 10 sold",
        "1 dead letters (sold_out 1)",
    ]:
        assert shown in text, f"{shown!r} not in\n{text}"
    assert "unreadable" not in text
    assert text.index("80202") < text.index("10001")  # busiest first


def test_a_frame_of_an_empty_directory_says_nothing_came_yet(tmp_path):
    text = frame(FileOutputs(tmp_path, Topics()))
    assert "global totals: none yet" in text and "0 dead letters" in text


def test_files_are_tailed_a_line_at_a_time_and_a_replaced_file_is_read_again(tmp_path):
    topics = Topics(output_prefix="mine-", output_suffix="-team")
    source, board = FileOutputs(tmp_path, topics), Board()
    path = tmp_path / "mine-global-totals-team.jsonl"
    line = msgspec.json.encode({"key": "totals", "value": totals(1)}) + b"\n"
    path.write_bytes(line + line[:20])  # the second line half written
    source.read(board, 0)
    assert board.totals.streams == 1 and board.unreadable == 0
    with path.open("ab") as file:
        file.write(msgspec.json.encode({"key": "totals", "value": totals(2)})[20:] + b"\n" + b"{oops\n")
    source.read(board, 0)
    assert board.totals.streams == 2 and board.unreadable == 1
    path.write_bytes(msgspec.json.encode({"key": "totals", "value": totals(3)}) + b"\n")  # a new run
    source.read(board, 0)
    assert board.totals.streams == 3


def test_files_show_the_records_read_where_no_rate_can_be_known(demo_out):
    text = frame(FileOutputs(demo_out, Topics()))
    assert "records/s" not in text
    assert stripped(text[text.index("records read") :]) == [
        "records read",
        " customer-stream-count   │ 0 │ event-streamer-alerts        │ 0",
        " top-customer-artists    │ 0 │ must-see-venue               │ 2",
        " ticket-response         │ 0 │ genre-event-suggestions      │ 0",
        " top-artists             │ 1 │ global-totals                │ 2",
        " customers-by-top-artist │ 0 │ zipcode-tickets              │ 2",
        " trending-artists        │ 2 │ zipcode-popular-event-alerts │ 0",
        " event-alerts            │ 1 │ dead-letters                 │ 1",
        "1 dead letters (sold_out 1)",
    ]


def test_a_real_run_shows_its_final_totals(tmp_path):
    write_dir(tmp_path / "in", Sizes(customers=40, artists=8, events=12, tickets=300, streams=800, zipcodes=3), seed=5)
    run_on_files("global_totals", tmp_path / "in", tmp_path / "out")
    last = msgspec.json.decode((tmp_path / "out" / "kafka-workshop-global-totals.jsonl").read_bytes().splitlines()[-1])
    text = frame(FileOutputs(tmp_path / "out", Topics()))
    value = last["value"]
    assert f"{value['customers']:,} customers   {value['streams']:,} streams   {value['events']:,} events" in text
    assert f"{value['tickets']:,} tickets" in text and value["customers"] == 40 and value["streams"] == 800


# --- the dashboard on a terminal of its size ----------------------------------------------------------------------

TITLE = "utopia watch: 14 outputs kafka-workshop-* on localhost:9092"


def stripped(text: str) -> list[str]:
    """The lines of a frame without the spaces rich pads them with."""
    return [line.rstrip() for line in text.splitlines()]


def drawn(frame: RenderableType, width: int, height: int) -> str:
    console = Console(record=True, width=width, height=height, file=io.StringIO())
    console.print(frame)
    return console.export_text()


def timed_board(directory) -> Board:
    """The demo's outputs as a board of Kafka records (they have rates) has them, none written lately."""
    board = Board()
    FileOutputs(directory, Topics()).read(board, 0)
    return board


def test_an_80x24_terminal_shows_all_but_the_rates_and_says_so(demo_out):
    assert stripped(drawn(render(timed_board(demo_out), T, TITLE, height=24), 80, 24)) == [
        "╭─ utopia watch: 14 outputs kafka-workshop-* on localhost:9092 ────────────────╮",
        "│ 1,234 customers   56,789 streams   42 events (7 taken place)   4,321 tickets │",
        "╰───────────────────────────────────────────────── as of 2026-11-24T01:02:03Z ─╯",
        "top artists                    trending 02:00-03:00 UTC",
        " # ┃ artist      ┃ streams      # ┃ artist     ┃ streams",
        "━━━╇━━━━━━━━━━━━━╇━━━━━━━━━    ━━━╇━━━━━━━━━━━━╇━━━━━━━━━",
        " 1 │ The Bytes   │   5,120      1 │ Nine Lives │      31",
        " 2 │ a-2         │   4,980",
        " 3 │ Offset Zero │   4,980",
        "must-see venues                       busiest zip codes",
        " most      ┃ venue        ┃ count      zip   ┃ tickets",
        "━━━━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━    ━━━━━━━╇━━━━━━━━━",
        " events    │ Red Rocks    │    12      80202 │     318",
        " customers │ The Fillmore │   318      10001 │      99",
        "event alerts                          neighbours told of a popular event",
        "NEARLY_SOLD_OUT e-17: 9 of 10 sold    none yet",
        "top streamers told of a new event     suggestions",
        "none yet                              none yet",
        "1 dead letters (sold_out 1)",
        "not shown for want of room: records/s",
    ]


@pytest.mark.parametrize("width", [60, 80, 120])
@pytest.mark.parametrize("height", [8, 16, 24, 32])
def test_a_frame_never_runs_past_the_terminal_and_keeps_the_notes(demo_out, width, height):
    note = "Kafka: " + "a long error " * 12  # over several lines
    text = drawn(render(timed_board(demo_out), T, TITLE, [note], height), width, height)
    assert len(text.splitlines()) <= height, text
    assert " ".join(text.split()).count(note.strip()) == 1, text


def test_a_tall_terminal_shows_the_whole_frame(demo_out):
    board = timed_board(demo_out)
    assert drawn(render(board, T, TITLE, height=60), 80, 60) == drawn(render(board, T, TITLE), 80, 60)


def test_live_frames_fit_the_terminal(demo_out):
    console = Console(record=True, width=80, height=24, file=io.StringIO())
    watch(FileOutputs(demo_out, Topics()), console, seconds=1.5)
    text = console.export_text()
    assert len(text.splitlines()) <= 24 and stripped(text)[-1] == "not shown for want of room: records read", text


@pytest.mark.parametrize(
    ("now", "hour", "closing"), [(T + 1800, "16:00-17:00", "17:05"), (T + 8 * 3600 - 1, "23:00-00:00", "00:05")]
)
def test_while_no_hour_has_closed_trending_says_when_the_current_one_closes(now, hour, closing):
    text = stripped(drawn(render(Board(), now, TITLE), 80, 40))
    assert text[3:7] == [
        f"top artists               trending {hour} UTC",
        " # ┃ artist ┃ streams       # ┃ artist  ┃  streams",
        "━━━╇━━━━━━━━╇━━━━━━━━━    ━━━━╇━━━━━━━━━╇━━━━━━━━━━",
        f"none yet                  none yet, closes at {closing}",
    ]


def test_a_file_mode_run_closed_its_hours_at_its_end_so_no_hour_is_due():
    text = stripped(drawn(render(Board(timed=False), T + 1800, TITLE), 80, 40))
    assert text[3:7] == [
        "top artists               trending",
        " # ┃ artist ┃ streams      # ┃ artist ┃ streams",
        "━━━╇━━━━━━━━╇━━━━━━━━━    ━━━╇━━━━━━━━╇━━━━━━━━━",
        "none yet                  none yet",
    ]


def test_the_command_draws_live_for_the_seconds_asked(demo_out, capsys):
    main(["watch", "--output", str(demo_out), "--seconds", "1.5"])
    assert "56,789 streams" in capsys.readouterr().out


def test_a_missing_directory_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["watch", "--output", str(tmp_path / "nowhere"), "--once"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == f"utopia: output directory {tmp_path / 'nowhere'} does not exist\n"


# --- live-demo's processes ------------------------------------------------------------------------------------


def test_the_live_demo_runs_the_feed_and_every_dataflow():
    started = commands(rate=100)
    assert started["generate"][1:] == ["-m", "utopia.cli", "generate", "--to", "kafka", "--live", "--rate", "100"]
    assert sorted(name for name in started if name != "generate") == dataflow_names()


def test_on_a_cluster_fed_already_the_live_demo_runs_only_the_dataflows():
    assert sorted(commands(rate=100, feed=False)) == dataflow_names()


def started_and_ready(name: str, code: str, tmp_path) -> subprocess.Popen:
    process = start(
        name,
        [sys.executable, "-c", f"import signal, time; {code}; print('ready', flush=True); time.sleep(60)"],
        tmp_path,
    )
    while b"ready" not in (tmp_path / f"{name}.log").read_bytes():
        time.sleep(0.05)
    return process


def test_stopping_asks_first(tmp_path):
    # A grace far longer than a Python needs to stop, even on a loaded machine: asked, it ends of itself.
    polite = started_and_ready("polite", "pass", tmp_path)
    stop({"polite": polite}, grace_s=120.0)
    assert polite.returncode == -signal.SIGINT  # how Python ends on a KeyboardInterrupt
    assert "KeyboardInterrupt" in (tmp_path / "polite.log").read_text()


def test_stopping_kills_what_does_not_listen_after_the_grace(tmp_path):
    deaf = started_and_ready("deaf", "signal.signal(signal.SIGINT, signal.SIG_IGN)", tmp_path)
    stop({"deaf": deaf}, grace_s=0.5)
    assert deaf.returncode == -signal.SIGKILL


def test_a_process_that_ended_on_its_own_is_named_under_the_dashboard(tmp_path):
    ended = start("sold_out", [sys.executable, "-c", "raise SystemExit(2)"], tmp_path)
    ended.wait()
    running = start("generate", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path)
    try:
        assert stopped({"sold_out": ended, "generate": running}, tmp_path) == [
            f"sold_out stopped (exit code 2): see {tmp_path / 'sold_out.log'}"
        ]
    finally:
        stop({"generate": running}, grace_s=1.0)
