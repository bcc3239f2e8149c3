"""From raw Kafka records to typed input records, and from outputs back to bytes.

Whatever the source (Kafka, files, tests), a dataflow sees batches of raw Kafka records: the topic,
partition, offset, key and value bytes of each. `Decoder` turns a batch into a `Batch` of typed
records in input order plus a `DeadLetter` for every bad one (docs/outputs.md#dead-letters).

Every batch knows its place in the input: the `lane` (which reader read it: one per source partition)
and the `position` of its first record. Positions grow along a lane, so a keyed step can tell which
of two records came first even when they reached it by different paths (docs/outputs.md#ordering).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, tzinfo
from operator import attrgetter

import msgspec
from confluent_kafka import Message

from utopia.config import Topics
from utopia.dates import UnknownDate, format_instant, parse_eventdate
from utopia.models import TOPIC_OF, DeadLetter, Event, Output, Record

log = logging.getLogger("utopia")


class InRecord(msgspec.Struct, frozen=True):
    """One consumed Kafka record, before decoding."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes | None
    timestamp: int = 0


class RecordBatch:
    """Raw records read together (file mode, tests): the first one at `position` of `lane`."""

    __slots__ = ("records", "lane", "position")

    def __init__(self, records: list[InRecord], lane: int = 0, position: int = 0):
        self.records, self.lane, self.position = records, lane, position

    def __len__(self) -> int:
        return len(self.records)

    def raw(self, index: int) -> InRecord:
        return self.records[index]


class KafkaBatch:
    """Records released together by one worker's Kafka reader, as confluent-kafka's Message objects.

    They may come from several partitions and topics, merged by timestamp (`topic` is None then).
    Decoding reads the values straight from the messages; the rest of a record (offset, key) is
    only looked at for a dead letter or a record that may wait, which saves building an `InRecord`
    per message. Messages cannot be pickled, so a batch is decoded on the worker that polled it.
    """

    __slots__ = ("topic", "messages", "lane", "position")

    def __init__(self, topic: str | None, messages: list, lane: int = 0, position: int = 0):
        self.topic, self.messages, self.lane, self.position = topic, messages, lane, position

    def __len__(self) -> int:
        return len(self.messages)

    def raw(self, index: int) -> InRecord:
        return self.record(self.messages[index])

    @staticmethod
    def record(message) -> InRecord:
        key = message.key()
        text_key = None if key is None else key.decode("utf-8", "replace")
        return InRecord(message.topic(), message.partition(), message.offset(), text_key, message.value(),
                        message.timestamp()[1])


class Batch:
    """A decoded batch: the good records in input order, the dead letters of the bad ones, and where it was read.

    The i-th good record is at `position + i` of `lane`; the next batch of the lane starts at `end`
    or later. `raw(i)` is the i-th good record as it was read, for a record that ends up waiting
    forever and must go to the dead letters as it came.
    """

    __slots__ = ("records", "dead", "lane", "position", "end", "_source", "_index")

    def __init__(self, records: list[Record], dead: list[tuple[str | None, DeadLetter]],
                 source: RecordBatch | KafkaBatch, index: list[int] | None = None):
        self.records, self.dead, self._source, self._index = records, dead, source, index
        self.lane, self.position = source.lane, source.position
        self.end = source.position + len(source)

    def raw(self, index: int) -> InRecord:
        return self._source.raw(index if self._index is None else self._index[index])


class _Reader:
    """How one topic is read by one dataflow: its record type and the foreign keys it must carry."""

    def __init__(self, model: type[Record], required: Sequence[str], zone: tzinfo):
        self.decoder = msgspec.json.Decoder(model)
        self.required = tuple(required)
        self.required_values = [attrgetter(name) for name in required]
        self.finish = _EventDates(zone) if model is Event else None

    def read(self, value: bytes) -> Record:
        record = self.decoder.decode(value)
        for name in self.required:
            if getattr(record, name) is None:
                raise msgspec.ValidationError(f"Object missing required field `{name}`")
        return record if self.finish is None else self.finish(record)

    def read_all(self, values: list[bytes]) -> list[Record] | None:
        """Every value decoded, or None if any is a tombstone or bad (then read them one by one).

        The loops run in C (`map`), a third cheaper per record than `read` in a Python loop.
        """
        try:
            records = list(map(self.decoder.decode, values))
        except (msgspec.DecodeError, UnicodeDecodeError, TypeError):  # TypeError: a tombstone's None
            return None
        for value_of in self.required_values:
            if None in map(value_of, records):
                return None
        return records if self.finish is None else list(map(self.finish, records))


class _EventDates:
    """Puts an event's date in one form, ISO-8601 UTC, as it is decoded (docs/outputs.md#dates).

    An eventdate in no accepted form leaves the event usable with its date unknown (null): the
    seed workshop's own test sends `"today"`. That is logged once per event id, not per record.
    """

    def __init__(self, zone: tzinfo):
        self.zone = zone
        self.unknown: set[str] = set()

    def __call__(self, event: Event) -> Event:
        if event.eventdate is None:
            return event
        try:
            instant = format_instant(parse_eventdate(event.eventdate, self.zone))
        except UnknownDate as error:
            if event.id not in self.unknown:
                self.unknown.add(event.id)
                log.warning("event %s: %s; its date is unknown (null)", event.id, error)
            instant = None
        return msgspec.structs.replace(event, eventdate=instant)


def describe(error: Exception) -> str:
    """A one-line reason for a dead letter, naming the kind of problem first."""
    if isinstance(error, UnicodeDecodeError):
        return "not UTF-8: the value is not valid UTF-8 text"
    text = str(error)
    if not isinstance(error, msgspec.ValidationError):  # a ValidationError is a DecodeError too
        return f"not valid JSON: {text}"
    if text.startswith("Expected `object`, got") and " - at " not in text:
        return f"not a JSON object: {text}"
    if "missing required field" in text:
        return f"missing field: {text}"
    return f"wrong type: {text}"


def raw_text(value: bytes) -> tuple[str, str | None]:
    """The value as text for a dead letter: UTF-8 as is, anything else base64 (second item says so)."""
    try:
        return value.decode("utf-8"), None
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), "base64"


def dead_letter(dataflow: str, raw: InRecord, error: str) -> tuple[str | None, DeadLetter]:
    """The dead-letter output for a raw record: keyed as the record was, its value kept as text."""
    text, encoding = raw_text(raw.value or b"")
    return raw.key, DeadLetter(dataflow, raw.topic, raw.partition, raw.offset, raw.key, text, error, encoding)


class Decoder:
    """Decodes the input topics of one dataflow; `reads` maps a record type to its required foreign keys.

    `zone` is where zone-less event dates were written (UTOPIA_EVENTDATE_ZONE).
    """

    def __init__(self, dataflow: str, topics: Topics, reads: Mapping[type[Record], Sequence[str]], zone: tzinfo = UTC):
        self.dataflow = dataflow
        self.readers = {topics.input(TOPIC_OF[model]): _Reader(model, fks, zone) for model, fks in reads.items()}

    @property
    def topics(self) -> list[str]:
        return list(self.readers)

    def decode(self, batch: RecordBatch | KafkaBatch) -> Batch:
        if isinstance(batch, KafkaBatch):
            return self._decode_kafka(batch)
        records: list[Record] = []
        index: list[int] = []
        dead: list[tuple[str | None, DeadLetter]] = []
        readers = self.readers
        for i, raw in enumerate(batch.records):
            if raw.value is None:
                continue  # a tombstone deletes nothing and is no error (docs/outputs.md#inputs)
            try:
                records.append(readers[raw.topic].read(raw.value))
                index.append(i)
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
                dead.append(dead_letter(self.dataflow, raw, describe(error)))
        return Batch(records, dead, batch, index)

    def _decode_kafka(self, batch: KafkaBatch) -> Batch:
        """The same as for RecordBatches; a clean batch is decoded in C loops, one topic at a time."""
        values = list(map(Message.value, batch.messages))
        if batch.topic is not None:
            records = self.readers[batch.topic].read_all(values)
        else:
            records = self._read_mixed(list(map(Message.topic, batch.messages)), values)
        if records is not None:
            return Batch(records, [], batch)
        records, index, dead = [], [], []
        for i, message in enumerate(batch.messages):
            value = message.value()
            if value is None:
                continue  # a tombstone deletes nothing and is no error (docs/outputs.md#inputs)
            try:
                records.append(self.readers[message.topic()].read(value))
                index.append(i)
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
                dead.append(dead_letter(self.dataflow, batch.record(message), describe(error)))
        return Batch(records, dead, batch, index)

    def _read_mixed(self, topics: list[str], values: list[bytes]) -> list[Record] | None:
        """Records of several topics in their merged order, or None if any is a tombstone or bad."""
        by_topic: dict[str, list[bytes]] = {}
        for topic, value in zip(topics, values):
            by_topic.setdefault(topic, []).append(value)
        decoded = {}
        for topic, of_topic in by_topic.items():
            records = self.readers[topic].read_all(of_topic)
            if records is None:
                return None
            decoded[topic] = iter(records)
        return [next(decoded[topic]) for topic in topics]


encode: Callable[[Output], bytes] = msgspec.json.Encoder().encode
"""An output value as the JSON bytes written to Kafka and to files."""
