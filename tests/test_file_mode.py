"""File mode (docs/outputs.md#file-mode): topic files in, merged by timestamp; JSONL out; one-line CLI errors."""

import json
import logging
import subprocess
import sys

import pytest

from utopia.cli import run_on_files
from utopia.io.file_io import MergedFileSource, TopicFile, merged_records


def write_topic(directory, topic, lines):
    (directory / f"{topic}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def read_output(directory, topic):
    path = directory / f"{topic}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_inputs_merge_by_timestamp_then_line_then_topic(tmp_path):
    write_topic(
        tmp_path,
        "data-demo-tickets",
        [
            {"key": "t1", "value": {"id": "t1"}, "timestamp": 1},
            {"key": "t2", "value": {"id": "t2"}, "timestamp": 5},
            {"key": "t3", "value": {"id": "t3"}, "timestamp": 5},
        ],
    )
    write_topic(
        tmp_path,
        "data-demo-events",
        [
            {"key": "e1", "value": {"id": "e1"}, "timestamp": 5},
            {"key": "e2", "value": {"id": "e2"}, "timestamp": 5},
            {"key": "e3", "value": {"id": "e3"}, "timestamp": 6},
        ],
    )
    order = [r.key for r in merged_records(tmp_path, ["data-demo-tickets", "data-demo-events"])]
    assert order == ["t1", "e1", "e2", "t2", "t3", "e3"]


def test_a_file_out_of_timestamp_order_is_read_in_line_order_as_a_partition(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("utopia"), "propagate", True)
    write_topic(
        tmp_path,
        "data-demo-tickets",
        [
            {"key": "t1", "value": {"id": "t1"}, "timestamp": 5},
            {"key": "t2", "value": {"id": "t2"}, "timestamp": 1},  # late: merged as if at 5, after t1
            {"key": "t3", "value": {"id": "t3"}, "timestamp": 6},
        ],
    )
    (tmp_path / "data-demo-events.jsonl").write_text(
        '{"key": "e1", "value": {"id": "e1"}, "timestamp": 2}\n'
        "not a record line\n"  # no timestamp of its own: right after e1, and not late
        '{"key": "e2", "value": {"id": "e2"}, "timestamp": 5}\n'
        '{"key": "e3", "value": {"id": "e3"}, "timestamp": 4}\n'  # late: merged as if at 5
        '{"key": "e4", "value": {"id": "e4"}, "timestamp": 6}\n'
    )
    with caplog.at_level(logging.INFO, "utopia"):
        records = list(merged_records(tmp_path, ["data-demo-tickets", "data-demo-events"]))
    assert [(r.key or r.value, r.offset, r.timestamp) for r in records] == [
        ("e1", 0, 2),
        (b"not a record line", 1, 0),
        ("t1", 0, 5),
        ("t2", 1, 1),
        ("e2", 2, 5),
        ("e3", 3, 4),
        ("t3", 2, 6),
        ("e4", 4, 6),
    ]
    assert [r.getMessage() for r in caplog.records] == [
        "line(s) older than a line before them in their file were read in line order, as Kafka reads a partition "
        "(docs/outputs.md#file-mode): data-demo-tickets.jsonl 1, data-demo-events.jsonl 1"
    ]


def test_files_in_timestamp_order_log_nothing(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("utopia"), "propagate", True)
    write_topic(tmp_path, "data-demo-streams", [{"key": f"s{n}", "value": {}, "timestamp": n // 2} for n in range(9)])
    with caplog.at_level(logging.INFO, "utopia"):
        assert len(list(merged_records(tmp_path, ["data-demo-streams", "data-demo-missing"]))) == 9
    assert caplog.records == []


def test_a_file_is_read_a_chunk_at_a_time(tmp_path):
    write_topic(
        tmp_path, "data-demo-streams", [{"key": f"s{n}", "value": {"id": f"s{n}"}, "timestamp": n} for n in range(2000)]
    )
    line_bytes = len((tmp_path / "data-demo-streams.jsonl").read_bytes()) // 2000  # about 60
    reader = TopicFile(tmp_path / "data-demo-streams.jsonl", "data-demo-streams", chunk_bytes=10 * line_bytes)
    held, keys = [], []
    for _, _, _, record in reader:
        held.append(reader.buffered)
        keys.append(record.key)
    assert keys == [f"s{n}" for n in range(2000)]
    assert 10 <= max(held) <= 12  # a chunk is the lines that reach chunk_bytes, never the file
    assert reader.buffered == 0


def test_a_resumed_replay_goes_on_after_the_records_it_had_read(tmp_path):
    write_topic(tmp_path, "data-demo-streams", [{"key": f"s{n}", "value": {}, "timestamp": n} for n in range(7)])
    part = MergedFileSource(tmp_path, ["data-demo-streams"], batch_size=2).build_part("in", "merged", 4)
    batches = [part.next_batch()[0], part.next_batch()[0]]
    assert [([r.key for r in b.records], b.position) for b in batches] == [(["s4", "s5"], 4), (["s6"], 6)]
    assert part.snapshot() == 7
    with pytest.raises(StopIteration):
        part.next_batch()


def test_values_may_be_objects_raw_text_or_null(tmp_path):
    write_topic(
        tmp_path,
        "data-demo-streams",
        [
            {"key": "s1", "value": {"id": "s1", "customerid": "c1"}, "timestamp": 1},
            {"key": "s2", "value": '{"id":"s2","customerid":"c1"}', "timestamp": 2},
            {"key": "s3", "value": None, "timestamp": 3},
            {"key": "s4", "value": "not json at all", "timestamp": 4},
        ],
    )
    run_on_files("customer_stream_count", tmp_path, tmp_path / "out")
    assert read_output(tmp_path / "out", "kafka-workshop-customer-stream-count")[-1] == {
        "key": "c1",
        "value": {"customerid": "c1", "streams": 2},
    }
    assert read_output(tmp_path / "out", "kafka-workshop-dead-letters") == [
        {
            "key": "s4",
            "value": {
                "dataflow": "customer_stream_count",
                "topic": "data-demo-streams",
                "partition": 0,
                "offset": 3,
                "key": "s4",
                "value": "not json at all",
                "error": "not valid JSON: JSON is malformed: invalid character (byte 4)",
            },
        }
    ]


def test_an_event_and_its_early_ticket_in_files(tmp_path):
    write_topic(
        tmp_path,
        "data-demo-tickets",
        [
            {"key": "t1", "value": {"id": "t1", "customerid": "c1", "eventid": "e1"}, "timestamp": 1},
            {"key": "t2", "value": {"id": "t2", "customerid": "c2", "eventid": "e1"}, "timestamp": 3},
        ],
    )
    write_topic(
        tmp_path,
        "data-demo-events",
        [
            {
                "key": "e1",
                "value": {"id": "e1", "capacity": 1, "eventdate": "Mon Mar 01 20:00:00 UTC 2027"},
                "timestamp": 2,
            },
        ],
    )
    out = tmp_path / "out"
    (out).mkdir()
    (out / "kafka-workshop-ticket-response.jsonl").write_text("stale output of an earlier run\n")
    run_on_files("purchase_event_ticket", tmp_path, out, workers=2)
    assert read_output(out, "kafka-workshop-ticket-response") == [
        {
            "key": "t1",
            "value": {"ticketid": "t1", "eventid": "e1", "customerid": "c1", "status": "CONFIRMED", "remaining": 0},
        },
        {
            "key": "t2",
            "value": {"ticketid": "t2", "eventid": "e1", "customerid": "c2", "status": "REJECTED", "remaining": 0},
        },
    ]
    assert read_output(out, "kafka-workshop-dead-letters") == []


def test_output_prefix_and_suffix_name_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("UTOPIA_OUTPUT_SUFFIX", "-team-bigfoot")
    write_topic(tmp_path, "data-demo-streams", [{"key": "s1", "value": {"id": "s1", "customerid": "c1"}}])
    run_on_files("customer_stream_count", tmp_path, tmp_path / "out")
    assert (tmp_path / "out" / "kafka-workshop-customer-stream-count-team-bigfoot.jsonl").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "no_such_flow", "--input", ".", "--output", "o"], "utopia: unknown dataflow 'no_such_flow'; known: "),
        (
            ["run", "customer_stream_count", "--input", "/nonexistent", "--output", "o"],
            "utopia: input directory /nonexistent does not exist",
        ),
    ],
)
def test_cli_errors_are_one_line_with_exit_2(args, message, tmp_path):
    done = subprocess.run([sys.executable, "-m", "utopia.cli", *args], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr


def test_bad_setting_is_one_line_with_exit_2(tmp_path):
    env = {"UTOPIA_BATCH_SIZE": "lots", "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-m", "utopia.cli", "run", "customer_stream_count", "--input", ".", "--output", "o"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert (done.returncode, done.stderr) == (2, "utopia: UTOPIA_BATCH_SIZE='lots' is not a positive whole number\n")
