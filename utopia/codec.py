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
import copyreg
import hashlib
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, tzinfo
from itertools import chain, groupby
from operator import attrgetter, itemgetter
from typing import Any, Literal, NamedTuple

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
    key: str | bytes | None
    """The Kafka key as text; its bytes when they are not UTF-8 (a dead letter keeps them as base64)."""
    value: bytes | None
    timestamp: int = 0


class RecordBatch:
    """Raw records read together (file mode, tests): the first one at `position` of `lane`."""

    __slots__ = ("records", "lane", "position")

    def __init__(self, records: list[InRecord], lane: int = 0, position: int = 0):
        self.records, self.lane, self.position = records, lane, position

    def __len__(self) -> int:
        return len(self.records)

    @property
    def raw(self) -> list[InRecord]:
        """The records as read, by index."""
        return self.records


class KafkaBatch:
    """Records released together by one worker's Kafka reader, as confluent-kafka's Message objects.

    They come as runs, one per topic partition in offset order, and `order` merges them by
    timestamp: the i-th record of the batch is the `order[i]`-th of the runs one after the other
    (None: one run, as it is). Decoding reads each run's values in C loops and puts the records in
    order; the rest of a record (offset, key) is only looked at for a dead letter or a record that
    may wait, which saves building an `InRecord` per message. Messages cannot be pickled, so a batch
    is decoded on the worker that polled it.
    """

    __slots__ = ("runs", "order", "lane", "position", "_messages")

    def __init__(
        self, runs: list[tuple[str, list[Message]]], order: list[int] | None = None, lane: int = 0, position: int = 0
    ):
        self.runs, self.order, self.lane, self.position = runs, order, lane, position
        self._messages: list[Message] | None = None

    def __len__(self) -> int:
        return sum(len(messages) for _, messages in self.runs)

    @property
    def messages(self) -> list[Message]:
        """The records in order."""
        if self._messages is None:
            joined = list(chain.from_iterable(messages for _, messages in self.runs))
            self._messages = joined if self.order is None else list(map(joined.__getitem__, self.order))
        return self._messages

    @property
    def raw(self) -> list[Message]:
        """The records as read, by index."""
        return self.messages

    @staticmethod
    def record(message) -> InRecord:
        return InRecord(*_message_fields(message))


ByType = Mapping[type, Sequence[int]]
"""Where each type's records are in a batch, in input order."""


class Batch:
    """A decoded batch: the good records in input order, the dead letters of the bad ones, and where it was read.

    The i-th good record is at `position + i` of `lane`; the next batch of the lane starts at `end`
    or later. `raw(i)` is the i-th good record as it was read, for a record that ends up waiting
    forever and must go to the dead letters as it came.
    """

    __slots__ = ("records", "dead", "lane", "position", "end", "_source", "_index", "_by_type")

    def __init__(
        self,
        records: list[Record],
        dead: list[tuple[str | bytes | None, DeadLetter]],
        source: RecordBatch | KafkaBatch,
        index: list[int] | None = None,
        by_type: ByType | Callable[[], ByType] | None = None,
    ):
        self.records, self.dead, self._source, self._index = records, dead, source, index
        self.lane, self.position = source.lane, source.position
        self.end = source.position + len(source)
        self._by_type = by_type  # made when first needed, if a function

    @property
    def caught_up(self) -> bool:
        """Whether this is no batch of records but word that its lane has read all there is for now.

        A tailing Kafka reader says so while it waits for new records (utopia.io.kafka_source), so
        that a step whose output waits for the next record knows none is on the way.
        """
        return self.end == self.position

    def raw(self, indices: Iterable[int]) -> list[InRecord | Message]:
        """These good records as read: `InRecord`s, or Kafka messages (`as_in_record` turns one into the other)."""
        if self._index is not None:
            indices = map(self._index.__getitem__, indices)
        return list(map(self._source.raw.__getitem__, indices))

    def with_records(self, records: list[Record]) -> Batch:
        """This batch with other records in the same places: read from the same raw records, at the same positions."""
        return Batch(records, self.dead, self._source, self._index)

    def runs(self, wanted: Collection[type]) -> Iterator[tuple[type, list[Record], Sequence[int]]]:
        """The records of the wanted types in input order, as runs of one type each, with their indices.

        A batch merged from several topics interleaves their records; a keyed step wants only some
        types, and handles a run of one type in C loops. Runs come from an index per type, made once
        per batch for all the steps that read it.
        """
        records, by_type = self.records, self._by_type
        if by_type is None:
            by_type = self._by_type = _indices_by_type(records)
        elif callable(by_type):
            by_type = self._by_type = by_type()
        present = [kind for kind in by_type if kind in wanted]
        if len(present) == 1:
            kind = present[0]
            if len(by_type) == 1:
                yield kind, records, range(len(records))
            else:
                yield kind, list(map(records.__getitem__, by_type[kind])), by_type[kind]
        elif present:
            merged: Sequence[int]
            if len(present) == len(by_type):
                merged = range(len(records))
                kinds = map(type, records)
            else:
                merged = sorted(chain.from_iterable(by_type[kind] for kind in present))
                kinds = map(type, map(records.__getitem__, merged))
            for kind, run in groupby(zip(kinds, merged), key=_first):
                indices = list(map(_second, run))
                yield kind, list(map(records.__getitem__, indices)), indices


def _indices_by_type(records: list[Record]) -> ByType:
    kinds = set(map(type, records))
    if len(kinds) == 1:
        return {kinds.pop(): range(len(records))}
    by_type: dict[type, list[int]] = {kind: [] for kind in kinds}
    for index, kind in enumerate(map(type, records)):
        by_type[kind].append(index)
    return by_type


_first, _second = itemgetter(0), itemgetter(1)


class FarMessages:
    """The Kafka messages of one run of records that crossed from another process, still encoded (utopia.steps.wire).

    Each record of the run stands beside a `FarMessage` that points here. A message is only read
    for a record that waits (it may become a dead letter), and most never do: the run's messages
    cross as one list per field, written in C loops with no object per message, and are decoded
    together the first time one of them is needed.
    """

    __slots__ = ("encoded", "records")

    def __init__(self, encoded: bytes | memoryview):
        self.encoded = encoded
        self.records: list[InRecord] | None = None

    @staticmethod
    def encode(messages: list[Message]) -> bytes:
        """The bytes a `FarMessages` of these messages reads."""
        return _FIELDS_ENCODER.encode(
            (
                list(map(Message.topic, messages)),
                list(map(Message.partition, messages)),
                list(map(Message.offset, messages)),
                list(map(Message.key, messages)),
                list(map(Message.value, messages)),
                list(map(_second, map(Message.timestamp, messages))),
            )
        )

    def record(self, index: int) -> InRecord:
        """The `index`-th message as the `InRecord` it stands for."""
        if self.records is None:
            topics, partitions, offsets, keys, values, stamps = _FIELDS.decode(self.encoded)
            self.records = list(map(InRecord, topics, partitions, offsets, map(_text_key, keys), values, stamps))
            self.encoded = b""  # what it viewed (the bytes of a whole bundle) may go
        return self.records[index]


class FarMessage(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """The Kafka message of a record that crossed from another process: the `index`-th of `messages`."""

    messages: FarMessages
    index: int

    def __reduce__(self) -> str | tuple[Any, ...]:
        # Into a recovery snapshot as the record it stands for: its run's bytes are not kept.
        return self.messages.record(self.index).__reduce__()


_FIELDS_ENCODER = msgspec.msgpack.Encoder()
_FIELDS = msgspec.msgpack.Decoder(
    tuple[list[str], list[int], list[int], list[bytes | None], list[bytes | None], list[int]]
)


def _text_key(key: bytes | None) -> str | bytes | None:
    """A Kafka key as `InRecord` keeps it: text when it is UTF-8, else its bytes."""
    if key is None:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:
        return key


def as_in_record(raw: InRecord | Message | FarMessage) -> InRecord:
    """A raw record as an `InRecord`: what a Kafka message is turned into to be pickled or dead-lettered."""
    kind = type(raw)
    if kind is InRecord:
        return raw  # type: ignore[return-value]  # `kind is InRecord`, which mypy does not follow
    if kind is FarMessage:
        return raw.messages.record(raw.index)  # type: ignore[union-attr]  # likewise
    return KafkaBatch.record(raw)


def _message_fields(message: Message) -> tuple:
    """A Kafka message's fields in `InRecord`'s order, its key as text when it is UTF-8."""
    return (
        message.topic(),
        message.partition(),
        message.offset(),
        _text_key(message.key()),
        message.value(),
        message.timestamp()[1],
    )


def _pickled_message(message: Message) -> tuple:
    return InRecord, _message_fields(message)


# A record that waits keeps the Kafka message it came in (a C object pickle cannot copy): pickled,
# to another process or into a recovery snapshot, it becomes the `InRecord` it stands for.
copyreg.pickle(Message, _pickled_message)


class RequiredWhen(NamedTuple):
    """A field a record must carry only when another field has a given value.

    A RESID address is a customer's home and must name the customer; a VENUE address names none
    (docs/outputs.md#dead-letters).
    """

    field: str
    when: str
    equals: str

    def missing(self, record: Record) -> bool:
        return getattr(record, self.field) is None and getattr(record, self.when) == self.equals


Required = str | RequiredWhen
"""A foreign key a record must carry: always (a field name), or only in some records."""

Reads = Mapping[type[Record], Sequence[Required]]
"""What a dataflow reads: each record type, with the foreign keys its records must carry."""


class _Reader:
    """How one topic is read by one dataflow: its record type and the foreign keys it must carry."""

    def __init__(self, model: type[Record], required: Sequence[Required], zone: tzinfo):
        self.model = model
        self.decoder = msgspec.json.Decoder(model)
        self.required = tuple(name for name in required if isinstance(name, str))
        self.required_values = [attrgetter(name) for name in self.required]
        self.required_when = tuple(rule for rule in required if isinstance(rule, RequiredWhen))
        # Any: it is given only Events (model is Event), which mypy cannot follow.
        self.finish: Callable[[Any], Record] | None = _EventDates(zone) if model is Event else None

    def read(self, value: bytes) -> Record:
        record = self.decoder.decode(value)
        for name in self.required:
            if getattr(record, name) is None:
                raise msgspec.ValidationError(f"Object missing required field `{name}`")
        for rule in self.required_when:
            if rule.missing(record):
                raise msgspec.ValidationError(
                    f"Object missing required field `{rule.field}` (required when `{rule.when}` is {rule.equals!r})"
                )
        return record if self.finish is None else self.finish(record)

    def read_all(self, values: list[bytes | None]) -> list[Record] | None:
        """Every value decoded, or None if any is a tombstone or bad (then read them one by one).

        The loops run in C (`map`), a third cheaper per record than `read` in a Python loop.
        """
        try:
            records = list(map(self.decoder.decode, values))  # type: ignore[arg-type]  # a None raises TypeError
        except (msgspec.DecodeError, UnicodeDecodeError, TypeError):  # TypeError: a tombstone's None
            return None
        for value_of in self.required_values:
            if None in map(value_of, records):
                return None
        for rule in self.required_when:
            if any(map(rule.missing, records)):
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


def raw_text(value: bytes) -> tuple[str, Literal["base64"] | None]:
    """The value as text for a dead letter: UTF-8 as is, anything else base64 (second item says so)."""
    try:
        return value.decode("utf-8"), None
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), "base64"


def dead_letter(dataflow: str, raw: InRecord, error: str) -> tuple[str | bytes | None, DeadLetter]:
    """The dead-letter output for a raw record: keyed as the record was, its key and value kept as text."""
    text, encoding = raw_text(raw.value or b"")
    key, key_encoding = (
        (None, None) if raw.key is None else raw_text(raw.key) if isinstance(raw.key, bytes) else (raw.key, None)
    )
    return raw.key, DeadLetter(dataflow, raw.topic, raw.partition, raw.offset, key, text, error, encoding, key_encoding)


def fit(letter: DeadLetter, limit: int) -> DeadLetter:
    """The dead letter cut to fit in `limit` bytes of JSON: its value first, then its key if need be.

    What is cut keeps its original size in bytes and a SHA-256 of it (`value_bytes`, `value_sha256`,
    `key_bytes`, `key_sha256`), so it can be recognised upstream (docs/outputs.md#dead-letters).
    """
    over = len(encode(letter)) - limit
    for field in ("value", "key"):
        text = getattr(letter, field)
        if over <= 0:
            break
        if not text:
            continue
        whole = text.encode()
        letter = msgspec.structs.replace(
            letter, **{f"{field}_bytes": len(whole), f"{field}_sha256": hashlib.sha256(whole).hexdigest()}
        )
        # The most characters that fit: escapes and multi-byte characters make bytes differ from
        # characters, so search (about 20 encodings, for a record that is already a rarity).
        fits, too_many = 0, len(text)
        while too_many - fits > 1:
            middle = (fits + too_many) // 2
            if len(encode(msgspec.structs.replace(letter, **{field: text[:middle]}))) <= limit:
                fits = middle
            else:
                too_many = middle
        letter = msgspec.structs.replace(letter, **{field: text[:fits]})
        over = len(encode(letter)) - limit
    return letter


def too_large(
    dataflow: str, topic: str, key: str | None, encoded: bytes, limit: int, room: int | None = None
) -> DeadLetter:
    """The dead letter of an output record that cannot be sent: more than `limit` bytes with its key.

    It is cut to fit in `room` bytes (default: `limit`), what its own Kafka key leaves.
    """
    size = len(encoded) + (0 if key is None else len(key.encode()))
    letter = DeadLetter(
        dataflow,
        topic,
        -1,
        -1,
        key,
        encoded.decode(),
        f"output too large: {size:,} bytes with its key, more than the {limit:,} a message may have",
    )
    return fit(letter, limit if room is None else room)


class Decoder:
    """Decodes the input topics of one dataflow; `reads` maps a record type to its required foreign keys.

    `zone` is where zone-less event dates were written (UTOPIA_EVENTDATE_ZONE).
    """

    def __init__(self, dataflow: str, topics: Topics, reads: Reads, zone: tzinfo = UTC):
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
        dead: list[tuple[str | bytes | None, DeadLetter]] = []
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
        """The same as for RecordBatches; a clean batch is decoded in C loops.

        One topic: its values are decoded in their merged order, so records lie in memory in the
        order they are used. Several: run by run, each with its topic's decoder, then put in order.
        """
        readers, runs = self.readers, batch.runs
        topics = {topic for topic, _ in runs}
        if not topics:  # the reader is caught up
            return Batch([], [], batch)
        if len(topics) == 1:
            reader = readers[topics.pop()]
            records = reader.read_all(list(map(Message.value, batch.messages)))
            if records is not None:
                return Batch(records, [], batch, by_type={reader.model: range(len(records))})
        else:
            decoded = [readers[topic].read_all(list(map(Message.value, messages))) for topic, messages in runs]
            if None not in decoded:
                read: list[list[Record]] = decoded  # type: ignore[assignment]  # None is not in it
                joined = list(chain.from_iterable(read))
                # Several runs always come with an order.
                return Batch(
                    list(map(joined.__getitem__, batch.order)),  # type: ignore[arg-type]
                    [],
                    batch,
                    by_type=lambda: self._indices(batch, read),
                )
        records, index, dead = [], [], []
        for i, message in enumerate(batch.messages):
            value = message.value()
            if value is None:
                continue  # a tombstone deletes nothing and is no error (docs/outputs.md#inputs)
            try:
                records.append(readers[message.topic()].read(value))  # type: ignore[index]  # consumed: has one
                index.append(i)
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
                dead.append(dead_letter(self.dataflow, batch.record(message), describe(error)))
        return Batch(records, dead, batch, index)

    def _indices(self, batch: KafkaBatch, decoded: list[list[Record]]) -> ByType:
        """Where each type's records are in the merged batch, from the inverse of its order (C loops)."""
        order: list[int] = batch.order  # type: ignore[assignment]  # several runs always come with an order
        where = sorted(range(len(order)), key=order.__getitem__)  # run record -> place in the batch
        of_type: dict[type, list[list[int]]] = {}
        start = 0
        for (topic, _), records in zip(batch.runs, decoded):
            of_type.setdefault(self.readers[topic].model, []).append(where[start : start + len(records)])
            start += len(records)
        return {
            kind: slices[0] if len(slices) == 1 else sorted(chain.from_iterable(slices))
            for kind, slices in of_type.items()
        }


encode: Callable[[Output], bytes] = msgspec.json.Encoder().encode
"""An output value as the JSON bytes written to Kafka and to files."""
