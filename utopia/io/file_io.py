"""File mode (docs/outputs.md#file-mode): topics as JSONL files, so the dataflows run with no broker.

Input: `<topic>.jsonl` per topic, one Kafka record a line:
`{"key": str|null, "value": object|string|null, "timestamp": epoch ms}`. All files are replayed as
one partition merged by timestamp (ties: line number, then topic name), so one worker is
deterministic. Output: `<output topic>.jsonl`, one `{"key", "value"}` a line, in the order produced.
"""

from __future__ import annotations

import threading
from pathlib import Path

import msgspec
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from utopia.codec import InRecord, RecordBatch, encode
from utopia.config import Settings
from utopia.io.runtime import set_up_worker_thread
from utopia.steps import Out


class _InputLine(msgspec.Struct):
    key: str | None = None
    value: msgspec.Raw = msgspec.Raw(b"null")  # kept as the exact bytes of the file
    timestamp: int = 0


_line_decoder = msgspec.json.Decoder(_InputLine)
_text_decoder = msgspec.json.Decoder(str)


def _raw_value(value: msgspec.Raw) -> bytes | None:
    """The Kafka value a line stands for: a JSON object as its own bytes, a string as its text."""
    raw = bytes(value)
    if raw == b"null":
        return None
    if raw[:1] == b'"':
        return _text_decoder.decode(raw).encode("utf-8", "surrogateescape")
    return raw


def read_topic_file(path: Path, topic: str) -> list[tuple[int, int, str, InRecord]]:
    """The records of one topic file with their merge order (timestamp, line, topic).

    A line that is not a Kafka record at all is kept as a record with the whole line as its value
    and no key, so that it reaches the dead-letter topic instead of vanishing.
    """
    rows = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                parsed = _line_decoder.decode(line)
                record = InRecord(topic, 0, number, parsed.key, _raw_value(parsed.value), parsed.timestamp)
            except (msgspec.DecodeError, msgspec.ValidationError):
                record = InRecord(topic, 0, number, None, line.rstrip(b"\r\n"), 0)
            rows.append((record.timestamp, number, topic, record))
    return rows


def merged_records(input_dir: Path, topics: list[str]) -> list[InRecord]:
    """Every record of the topics' files, in replay order; a missing file is an empty topic."""
    rows = []
    for topic in topics:
        path = input_dir / f"{topic}.jsonl"
        if path.exists():
            rows.extend(read_topic_file(path, topic))
    rows.sort(key=lambda row: row[:3])
    return [row[3] for row in rows]


class _ReplayPartition(StatefulSourcePartition[RecordBatch, int]):
    """The merged records in batches; one lane, a record's position is its place in the replay."""

    def __init__(self, records: list[InRecord], position: int, batch_size: int):
        self.records, self.position, self.batch_size = records, position, batch_size

    def next_batch(self) -> list[RecordBatch]:
        if self.position >= len(self.records):
            raise StopIteration()
        batch = RecordBatch(self.records[self.position : self.position + self.batch_size], 0, self.position)
        self.position += len(batch)
        return [batch]

    def snapshot(self) -> int:
        return self.position


class MergedFileSource(FixedPartitionedSource[RecordBatch, int]):
    """The topic files of a directory replayed as one partition, in batches."""

    def __init__(self, input_dir: Path, topics: list[str], batch_size: int = 1000):
        self.input_dir, self.topics, self.batch_size = input_dir, topics, batch_size

    def list_parts(self) -> list[str]:
        return ["merged"]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _ReplayPartition:
        return _ReplayPartition(merged_records(self.input_dir, self.topics), resume_state or 0, self.batch_size)


class _OutLine(msgspec.Struct):
    key: str | None
    value: msgspec.Raw


class _SharedFile:
    """One output file written by every worker thread of this process, a whole batch at a time."""

    _open: dict[Path, _SharedFile] = {}
    _registry_lock = threading.Lock()

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = path.open("wb")  # replaces an earlier run's output (docs/outputs.md#file-mode)
        self.lock = threading.Lock()
        self.users = 0

    @classmethod
    def acquire(cls, path: Path) -> _SharedFile:
        with cls._registry_lock:
            shared = cls._open.get(path) or cls._open.setdefault(path, cls(path))
            shared.users += 1
            return shared

    def release(self, path: Path) -> None:
        with self._registry_lock:
            self.users -= 1
            if self.users == 0:
                self.file.close()
                del self._open[path]

    def write(self, data: bytes) -> None:
        with self.lock:
            self.file.write(data)
            self.file.flush()


class _JsonlPartition(StatelessSinkPartition[Out]):
    def __init__(self, path: Path):
        self.path = path
        self.shared = _SharedFile.acquire(path)
        self.encoder = msgspec.json.Encoder()

    def write_batch(self, items: list[Out]) -> None:
        lines = bytearray()
        for key, value in items:
            self.encoder.encode_into(_OutLine(key, msgspec.Raw(encode(value))), lines, -1)
            lines += b"\n"
        self.shared.write(bytes(lines))

    def close(self) -> None:
        self.shared.release(self.path)


class JsonlSink(DynamicSink[Out]):
    """One output topic as one JSONL file, `<topic>.jsonl`, lines in the order the workers produce them."""

    def __init__(self, output_dir: Path, topic: str):
        self.topic, self.path = topic, output_dir / f"{topic}.jsonl"

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _JsonlPartition:
        set_up_worker_thread()  # every worker builds every sink, on its own thread, before any record
        return _JsonlPartition(self.path)


class FileIO:
    """Sources and sinks over a directory of topic files and an output directory."""

    def __init__(self, input_dir: Path, output_dir: Path, settings: Settings = Settings()):
        self.input_dir, self.output_dir = input_dir, output_dir
        self.topics, self.batch_size, self.changelog = settings.topics, settings.batch_size, settings.changelog
        self.zone = settings.zone

    def source(self, dataflow: str, topics: list[str]) -> MergedFileSource:
        return MergedFileSource(self.input_dir, topics, self.batch_size)

    def sink(self, dataflow: str, output: str) -> JsonlSink:
        return JsonlSink(self.output_dir, self.topics.output(output))
