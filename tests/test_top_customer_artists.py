"""Each customer's top three artists, ported from the seed workshop's TopCustomerArtists test."""

import pytest
from hypothesis import given, settings

from dataflows import top_customer_artists
from tests import reference
from tests.conftest import plain
from tests.strategies import stream_log
from tests.test_file_mode import read_output, write_topic
from utopia.cli import run_on_files
from utopia.io.testing import TestingIO, kafka_records, run
from utopia.models import Stream


def streams_of(customer: str, *artists: str) -> list[Stream]:
    return [Stream(f"s-{customer}-{i}-{a}", customer, a) for i, a in enumerate(artists)]


def top_after(records, workers=1) -> dict:
    io = TestingIO(kafka_records(records))
    run(top_customer_artists.build(io), workers)
    return {key: plain(value)["top"] for key, value in io.latest("top-customer-artists").items()}


def test_ranks_artists_by_streams_then_by_who_got_there_first():
    first = streams_of("c1", "4", "4", "2", "4", "3", "2")
    assert top_after(first) == {
        "c1": [
            {"artistid": "4", "streams": 3},
            {"artistid": "2", "streams": 2},
            {"artistid": "3", "streams": 1},
        ]
    }

    # 5 overtakes 3; it ties with 2, but 2 reached two streams first.
    overtaken = first + streams_of("c1", "5", "5")
    assert top_after(overtaken) == {
        "c1": [
            {"artistid": "4", "streams": 3},
            {"artistid": "2", "streams": 2},
            {"artistid": "5", "streams": 2},
        ]
    }

    # 3 comes back above 2 (and 5); it ties with 4, which reached three streams first.
    comeback = overtaken + [Stream("s-x1", "c1", "3"), Stream("s-x2", "c1", "3")]
    assert top_after(comeback) == {
        "c1": [
            {"artistid": "4", "streams": 3},
            {"artistid": "3", "streams": 3},
            {"artistid": "2", "streams": 2},
        ]
    }


def workshop_tops(tmp_path) -> list[list[tuple[str, int]]]:
    """The seed workshop's six streams of customer 1 (artists 2, 2, 3, 4, 4, 4) in file mode: each top written."""
    streams = [
        {"key": f"s{i}", "value": {"id": f"s{i}", "customerid": "1", "artistid": artist}, "timestamp": i}
        for i, artist in enumerate(["2", "2", "3", "4", "4", "4"])
    ]
    write_topic(tmp_path, "data-demo-streams", streams)
    run_on_files("top_customer_artists", tmp_path, tmp_path / "out")
    lines = read_output(tmp_path / "out", "kafka-workshop-top-customer-artists")
    return [[(a["artistid"], a["streams"]) for a in line["value"]["top"]] for line in lines]


@pytest.mark.parametrize("batch_size", ["1", "4", "1000"])
def test_with_no_cache_every_change_of_the_top_is_written_as_kafka_streams_does(batch_size, tmp_path, monkeypatch):
    # The seed workshop's TopCustomerArtistsTest: six streams of customer 1, six records out, in order
    # (UTOPIA_CHANGELOG_FLUSH_MS=0 is Kafka Streams' statestore.cache.max.bytes=0).
    monkeypatch.setenv("UTOPIA_CHANGELOG_FLUSH_MS", "0")
    monkeypatch.setenv("UTOPIA_BATCH_SIZE", batch_size)
    assert workshop_tops(tmp_path) == [
        [("2", 1)],
        [("2", 2)],
        [("2", 2), ("3", 1)],
        [("2", 2), ("3", 1), ("4", 1)],
        [("2", 2), ("4", 2), ("3", 1)],  # 4 ties with 2, which reached two streams first
        [("4", 3), ("2", 2), ("3", 1)],
    ]


def test_with_the_cache_a_busy_key_is_written_once_per_flush(tmp_path, monkeypatch):
    monkeypatch.setenv("UTOPIA_CHANGELOG_FLUSH_MS", "60000")  # longer than the run: only the end flushes
    assert workshop_tops(tmp_path) == [[("4", 3), ("2", 2), ("3", 1)]]


def test_customers_are_ranked_independently():
    records = streams_of("c1", "a", "b", "b") + streams_of("c2", "a")
    assert top_after(records) == {
        "c1": [{"artistid": "b", "streams": 2}, {"artistid": "a", "streams": 1}],
        "c2": [{"artistid": "a", "streams": 1}],
    }


def test_stream_without_artist_is_a_dead_letter_here():
    io = TestingIO(kafka_records([Stream("s1", "c1", None), Stream("s2", "c1", "a")]))
    run(top_customer_artists.build(io))
    [dead] = io.values("dead-letters")
    assert (dead.offset, dead.error) == (0, "missing field: Object missing required field `artistid`")
    assert [plain(v)["top"] for v in io.values("top-customer-artists")] == [[{"artistid": "a", "streams": 1}]]


@settings(max_examples=40)  # each example runs whole dataflows
@given(log=stream_log())
def test_matches_reference(log, workers):
    io = TestingIO(kafka_records(log), batch_size=3)
    run(top_customer_artists.build(io), workers)
    good = [r for r in log if isinstance(r, Stream)]
    assert {k: plain(v) for k, v in io.latest("top-customer-artists").items()} == reference.top_customer_artists(good)
    assert len(io.outputs["dead-letters"]) == sum(1 for r in log if isinstance(r, tuple) and r[1] is not None)
