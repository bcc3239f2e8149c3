"""From raw Kafka records to typed input records, and from outputs back to bytes.

Whatever the source (Kafka, files, tests), a dataflow sees `InRecord`s: the topic, partition,
offset, key and raw value bytes of one Kafka record. `Decoder` turns a batch of them into typed
records in input order plus a `DeadLetter` for every bad one (SPEC section 1, "Bad input").
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter

import msgspec
from confluent_kafka import Message

from utopia.config import Topics
from utopia.models import TOPIC_OF, DeadLetter, Output, Record


class InRecord(msgspec.Struct, frozen=True):
    """One consumed Kafka record, before decoding."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes | None
    timestamp: int = 0


class KafkaBatch:
    """One poll of one topic partition, as confluent-kafka's Message objects.

    Decoding reads the values straight from the messages; the rest of a record (offset, key) is
    only looked at for a dead letter, which saves building an `InRecord` per message. Messages
    cannot be pickled, so a batch is decoded on the worker that polled it.
    """

    __slots__ = ("topic", "partition", "messages")

    def __init__(self, topic: str, partition: int, messages: list):
        self.topic, self.partition, self.messages = topic, partition, messages

    def record(self, message) -> InRecord:
        key = message.key()
        text_key = None if key is None else key.decode("utf-8", "replace")
        return InRecord(self.topic, self.partition, message.offset(), text_key, message.value(), message.timestamp()[1])


class Decoded(msgspec.Struct):
    """A decoded batch: the good records in input order, and the dead letters of the bad ones."""

    records: list[Record]
    dead: list[tuple[str | None, DeadLetter]]


class _Reader:
    """How one topic is read by one dataflow: its record type and the foreign keys it must carry."""

    def __init__(self, model: type[Record], required: Sequence[str]):
        self.decoder = msgspec.json.Decoder(model)
        self.required = tuple(required)
        self.required_values = [attrgetter(name) for name in required]

    def read(self, value: bytes) -> Record:
        record = self.decoder.decode(value)
        for name in self.required:
            if getattr(record, name) is None:
                raise msgspec.ValidationError(f"Object missing required field `{name}`")
        return record

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
        return records


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


class Decoder:
    """Decodes the input topics of one dataflow; `reads` maps a record type to its required foreign keys."""

    def __init__(self, dataflow: str, topics: Topics, reads: Mapping[type[Record], Sequence[str]]):
        self.dataflow = dataflow
        self.readers = {topics.input(TOPIC_OF[model]): _Reader(model, fks) for model, fks in reads.items()}

    @property
    def topics(self) -> list[str]:
        return list(self.readers)

    def decode(self, batch: Sequence[InRecord] | KafkaBatch) -> Decoded:
        if isinstance(batch, KafkaBatch):
            return self._decode_kafka(batch)
        records: list[Record] = []
        dead: list[tuple[str | None, DeadLetter]] = []
        readers = self.readers
        for raw in batch:
            if raw.value is None:
                continue  # a tombstone deletes nothing and is no error (SPEC 4.3)
            try:
                records.append(readers[raw.topic].read(raw.value))
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
                dead.append((raw.key, self.dead_letter(raw, describe(error))))
        return Decoded(records, dead)

    def _decode_kafka(self, batch: KafkaBatch) -> Decoded:
        """The same as for InRecords, a clean batch decoded in one go: a Kafka batch has one topic."""
        reader = self.readers[batch.topic]
        records = reader.read_all(list(map(Message.value, batch.messages)))
        if records is not None:
            return Decoded(records, [])
        records, dead = [], []
        for message in batch.messages:
            value = message.value()
            if value is None:
                continue  # a tombstone deletes nothing and is no error (SPEC 4.3)
            try:
                records.append(reader.read(value))
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
                raw = batch.record(message)
                dead.append((raw.key, self.dead_letter(raw, describe(error))))
        return Decoded(records, dead)

    def dead_letter(self, raw: InRecord, error: str) -> DeadLetter:
        text, encoding = raw_text(raw.value or b"")
        return DeadLetter(self.dataflow, raw.topic, raw.partition, raw.offset, raw.key, text, error, encoding)


encode: Callable[[Output], bytes] = msgspec.json.Encoder().encode
"""An output value as the JSON bytes written to Kafka and to files."""
