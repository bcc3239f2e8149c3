"""File mode (docs/outputs.md#file-mode): topics as JSONL files, so the dataflows run with no broker.

Input: `<topic>.jsonl` per topic, one Kafka record a line:
`{"key": str|null, "value": object|string|null, "timestamp": epoch ms}`. Each file is read as
Kafka reads a partition, line order being offset order, and all files are replayed as one
partition merged by timestamp (ties: line number, then topic name), so one worker is
deterministic. The files are read as the merge goes, a chunk at a time, so an input larger than
memory runs too. Output: `<output topic>.jsonl`, one `{"key", "value"}` a line, in the order produced.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import msgspec
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from utopia.codec import InRecord, RecordBatch, encode
from utopia.config import Settings
from utopia.io.runtime import set_up_worker_thread
from utopia.steps import Out

log = logging.getLogger("utopia")

CHUNK_BYTES = 1 << 20
"""How much of each topic file is read at a time: the merge holds about this much per file."""
_EARLIEST = -(1 << 62)
"""Before any timestamp: where a non-record line sorts when no record came before it in its file."""


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


class TopicFile:
    """One topic file read as Kafka mode reads a partition: in line order, a chunk of lines at a time.

    Iterating yields `(timestamp, line, topic, record)`, the first three being the record's place in
    the merge. As the Kafka source does (utopia.io.kafka_source), the timestamp is the running
    maximum of the file's timestamps so far: a line older than one before it keeps its place in the
    file, and counts as `late`. A line that is not a Kafka record at all is kept as a record with
    the whole line as its value and no key, so that it reaches the dead-letter topic instead of
    vanishing; having no timestamp, it goes right after the line before it and is not late.
    """

    def __init__(self, path: Path, topic: str, chunk_bytes: int = CHUNK_BYTES):
        self.path, self.topic, self.chunk_bytes = path, topic, chunk_bytes
        self.late = 0
        self.buffered = 0  # how many lines the current chunk holds: what of the file is in memory

    def __iter__(self) -> Iterator[tuple[int, int, str, InRecord]]:
        topic, newest, number = self.topic, _EARLIEST, -1
        with self.path.open("rb") as file:
            while lines := file.readlines(self.chunk_bytes):
                self.buffered = len(lines)
                for line in lines:
                    number += 1
                    if not line.strip():
                        continue
                    try:
                        parsed = _line_decoder.decode(line)
                        record = InRecord(topic, 0, number, parsed.key, _raw_value(parsed.value), parsed.timestamp)
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        yield newest, number, topic, InRecord(topic, 0, number, None, line.rstrip(b"\r\n"), 0)
                        continue
                    if record.timestamp >= newest:
                        newest = record.timestamp
                    else:
                        self.late += 1
                    yield newest, number, topic, record
                del lines  # the chunk is done: hold no two at once
        self.buffered = 0


def merged_records(input_dir: Path, topics: list[str]) -> Iterator[InRecord]:
    """Every record of the topics' files, in replay order, read as it goes; a missing file is an empty topic.

    Once all are read, one log line counts each file's late lines (`TopicFile`), if any.
    """
    files = [TopicFile(path, topic) for topic in topics if (path := input_dir / f"{topic}.jsonl").exists()]
    for _, _, _, record in heapq.merge(*files):
        yield record
    late = [f"{file.path.name} {file.late}" for file in files if file.late]
    if late:
        log.warning(
            "line(s) older than a line before them in their file were read in line order, as Kafka reads "
            "a partition (docs/outputs.md#file-mode): %s",
            ", ".join(late),
        )


class _ReplayPartition(StatefulSourcePartition[RecordBatch, int]):
    """The merged records in batches; one lane, a record's position is its place in the replay."""

    def __init__(self, records: Iterator[InRecord], position: int, batch_size: int):
        self.records, self.position, self.batch_size = records, position, batch_size
        if position:  # resumed: the records before are done
            next(islice(records, position, position), None)

    def next_batch(self) -> list[RecordBatch]:
        batch = RecordBatch(list(islice(self.records, self.batch_size)), 0, self.position)
        if not batch:
            raise StopIteration()
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
