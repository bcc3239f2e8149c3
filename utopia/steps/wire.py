"""How a keyed step's parcels travel to a worker in another process: msgspec run by run, not pickle item by item.

With several processes, about half of what a keyed step receives comes from another process, and
Bytewax pickles whatever crosses. Pickle handles a msgspec Struct through its generic `__reduce__`
protocol, one record at a time: pickling `(key, Placed(...))` took 0.30 us against 0.04 us for a
pair of strings. msgspec encodes and decodes a whole list of values of one type in one C call,
given that type.

So the pairs of the parcels bound for one worker (utopia.steps bundles them) are cut into runs of
consecutive values of one shape; each run travels as msgpack with a descriptor of its type, from
which the receiving process builds, once, the typed decoder:

- a msgspec Struct, a NamedTuple, `str`, `int`, `float`, `bool` or `None`: itself;
- a wrapper (a generic Struct with one parameter, its field `value`, such as `Placed`): the wrapper
  of the shape of its value, `Placed[Event]`;
- a record that may wait, `(raw, record)` with `raw` a Kafka message: the message as a
  `TravellingRecord`, then the shape of the record. The message arrives still encoded
  (`msgspec.Raw`): it is only read if the record goes to the dead letters, and most never do.

A shape travels as msgpack only if nothing in its type would decode loosely (`Any`, a bare
`tuple`) and its first run in the process comes back equal to what was sent; other runs, such as
raw records that are already `InRecord`s (from files, or resumed from a snapshot), and parcels cut
into too many short runs, are pickled. How a parcel travelled never changes what arrives.
"""

from __future__ import annotations

import importlib
import pickle
from itertools import chain, groupby
from operator import attrgetter, itemgetter
from typing import Any

import msgspec
import msgspec.inspect as inspect
from confluent_kafka import Message

from utopia.codec import TravellingRecord

Pair = tuple[str | None, Any]

_WRAPPERS: set[type] = set()
_PICKLED = "pickle"
_PRIMITIVES: dict[type, str] = {str: "str", int: "int", float: "float", bool: "bool", type(None): "None"}
_BY_NAME: dict[str, Any] = {name: (None if kind is type(None) else kind) for kind, name in _PRIMITIVES.items()}
_INDEX = [bytes((n,)) for n in range(256)]
"""A value's shape in a bundle's order: one byte, so a bundle of more than 256 shapes is pickled whole."""


class _Held:
    """The shape of a record that may wait: `(raw, record)`, the Kafka message travelling as a `TravellingRecord`.

    It arrives as `(msgspec.Raw, record)`, which `utopia.codec.as_in_record` reads for a dead letter:
    decoding a message's seven fields took 290 ns in a micro-benchmark, keeping its bytes 30 ns.
    """


class _Other:
    """The shape of values that travel pickled: tuples other than `(Kafka message, record)`."""


_VALUE, _FIRST, _SECOND = attrgetter("value"), itemgetter(0), itemgetter(1)


def wrapper(cls: type) -> type:
    """Register a generic Struct with one type parameter, its field `value`: a run travels typed by its values."""
    _WRAPPERS.add(cls)
    return cls


def encode(parcels: list[tuple[str, list[Pair]]]) -> bytes:
    """Shards' parcels, `(shard, pairs)`, as bytes for `decode`: their values by shape, and the order they came in."""
    names = list(map(_FIRST, parcels))
    counts = list(map(len, map(_SECOND, parcels)))
    pairs = list(chain.from_iterable(map(_SECOND, parcels)))
    keys, values = list(map(_FIRST, pairs)), list(map(_SECOND, pairs))
    index: dict[Any, int] = {}
    columns: list[list] = []
    order: list[bytes] = []
    for shape, start, end in _spans(values) if _plain_keys(keys) else ():
        n = index.get(shape)
        if n is None:
            if len(columns) == len(_INDEX):  # more shapes than one byte tells apart
                columns = []
                break
            n = index[shape] = len(columns)
            columns.append([])
        columns[n].extend(values[start:end])
        order.append(_INDEX[n] * (end - start))
    if not columns:  # keys of other types, or too many shapes: pickled whole
        return _OUTER_ENCODER.encode((names, counts, keys, b"", [(_PICKLED, msgspec.Raw(_pickled(values)))]))
    runs = []
    for shape, column in zip(index, columns):
        descriptor = _descriptor(shape, column)
        try:
            payload = None if descriptor is None else _ENCODER.encode(_with_messages_converted(shape, column))
        except (TypeError, ValueError, msgspec.MsgspecError):  # a value msgpack cannot carry, whatever its type says
            payload = None
        if payload is None:
            descriptor, payload = _PICKLED, _pickled(column)
        runs.append((descriptor, msgspec.Raw(payload)))
    return _OUTER_ENCODER.encode((names, counts, keys, b"".join(order) if len(runs) > 1 else b"", runs))


def decode(data: bytes) -> list[tuple[str, list[Pair]]]:
    """The parcels `encode` made these bytes of, each as a plain list of pairs."""
    names, counts, keys, order, runs = _OUTER_DECODER.decode(data)
    columns = [pickle.loads(_BYTES_DECODER.decode(payload)) if descriptor == _PICKLED
               else _decoder(descriptor).decode(payload) for descriptor, payload in runs]
    if len(columns) == 1:
        values = columns[0]
    else:  # each value from the column of its shape, in the order they were sent (C loops)
        values = list(map(next, map([iter(column) for column in columns].__getitem__, order)))
    pairs = list(zip(keys, values))
    parcels, start = [], 0
    for name, count in zip(names, counts):
        parcels.append((name, pairs[start : start + count]))
        start += count
    return parcels


def _with_messages_converted(shape: Any, run: list) -> list:
    """A run to encode, its Kafka messages already `TravellingRecord`s, made in C loops rather than by `enc_hook`.

    A wrapper encodes as the array of its fields, so a run of them is encoded as tuples of the same
    fields, with their held records converted; decoding still makes wrappers.
    """
    if type(shape) is not tuple:
        return run
    outer, inner = shape
    if outer is _Held:
        return list(zip(TravellingRecord.of_all(list(map(_FIRST, run))), map(_SECOND, run)))
    if type(inner) is tuple and inner[0] is _Held and outer.__struct_config__.array_like:
        fields = outer.__struct_fields__
        columns = [list(map(attrgetter(field), run)) for field in fields]
        held = columns[fields.index("value")]
        columns[fields.index("value")] = list(zip(TravellingRecord.of_all(list(map(_FIRST, held))), map(_SECOND, held)))
        return list(zip(*columns))
    return run


def _plain_keys(keys: list) -> bool:
    return set(map(type, keys)) <= {str, type(None)}


def _pickled(values: list) -> bytes:
    return _ENCODER.encode(pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL))


def _spans(values: list) -> list[tuple[Any, int, int]]:
    """Consecutive values of one shape, as (shape, start, end); `_Other` is the shape of what has no descriptor."""
    spans: list[tuple[Any, int, int]] = []
    start = 0
    for kind, group in groupby(map(type, values)):
        end = start + len(list(group))
        if kind in _WRAPPERS:
            inner = _spans(list(map(_VALUE, values[start:end])))
            spans.extend(((kind, shape), start + s, start + e) for shape, s, e in inner)
        elif kind is tuple:
            spans.extend(_tuple_spans(values[start:end], start))
        else:
            spans.append((kind, start, end))
        start = end
    return spans


def _tuple_spans(pairs: list, offset: int) -> list[tuple[Any, int, int]]:
    """The spans of tuples from `offset`: records that may wait, `(message, record)`, by the shape of the record.

    A raw record that is already an `InRecord` (read from a file, or resumed from a snapshot) travels pickled.
    """
    if set(map(len, pairs)) != {2} or set(map(type, map(_FIRST, pairs))) != {Message}:
        return [(_Other, offset, offset + len(pairs))]
    return [((_Held, shape), offset + s, offset + e) for shape, s, e in _spans(list(map(_SECOND, pairs)))]


_checked: dict[Any, str | None] = {}
"""What is known of each shape in this process: its descriptor, or None if it is pickled."""


def _descriptor(shape: Any, run: list) -> str | None:
    """The shape's descriptor if it travels as msgpack; checked on its first run in this process."""
    try:
        return _checked[shape]
    except KeyError:
        pass
    descriptor = _describe(shape)
    if descriptor is not None:
        try:
            kind = _decoder(descriptor)
            encoded = _ENCODER.encode(_with_messages_converted(shape, run))
            if not _strict(inspect.type_info(_type_of(shape))) or _opened(kind.decode(encoded)) != _as_sent(run):
                descriptor = None
        except (TypeError, ValueError, msgspec.MsgspecError):
            descriptor = None
    _checked[shape] = descriptor
    return descriptor


def _describe(shape: Any) -> str | None:
    """`Placed[utopia.models:Event]`, `held[None]`, `str`: a shape in words another process reads back."""
    if type(shape) is tuple:
        outer, inner = shape
        described = _describe(inner)
        if described is None:
            return None
        name = "held" if outer is _Held else f"{outer.__module__}:{outer.__qualname__}"
        return f"{name}[{described}]"
    if shape in _PRIMITIVES:
        return _PRIMITIVES[shape]
    if isinstance(shape, type) and (issubclass(shape, msgspec.Struct) or _is_named_tuple(shape)):
        return f"{shape.__module__}:{shape.__qualname__}"
    return None


def _is_named_tuple(kind: type) -> bool:
    return issubclass(kind, tuple) and hasattr(kind, "_fields")


def _type_of(shape: Any) -> Any:
    if type(shape) is tuple:
        outer, inner = shape
        return tuple[TravellingRecord, _type_of(inner)] if outer is _Held else outer[_type_of(inner)]
    return None if shape is type(None) else shape


def _parse(descriptor: str) -> Any:
    """The type a descriptor names (the inverse of `_describe`)."""
    if descriptor.endswith("]"):
        outer, inner = descriptor[:-1].split("[", 1)
        kind = _parse(inner)
        return tuple[msgspec.Raw, kind] if outer == "held" else _named(outer)[kind]
    if descriptor in _BY_NAME:
        return _BY_NAME[descriptor]
    return _named(descriptor)


def _named(name: str) -> Any:
    module, qualname = name.split(":")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


_decoders: dict[str, msgspec.msgpack.Decoder] = {}


def _decoder(descriptor: str) -> msgspec.msgpack.Decoder:
    decoder = _decoders.get(descriptor)
    if decoder is None:
        decoder = _decoders[descriptor] = msgspec.msgpack.Decoder(list[_parse(descriptor)])
    return decoder


def _strict(info: inspect.Type) -> bool:
    """Whether a type decodes exactly to what was encoded: nothing in it is `Any` or an untyped container."""
    if isinstance(info, inspect.AnyType):
        return False
    if isinstance(info, inspect.StructType | inspect.NamedTupleType):
        return all(_strict(field.type) for field in info.fields)
    if isinstance(info, inspect.TupleType | inspect.VarTupleType | inspect.ListType | inspect.SetType
                  | inspect.FrozenSetType):
        items = info.item_types if isinstance(info, inspect.TupleType) else (info.item_type,)
        return all(_strict(item) for item in items)
    if isinstance(info, inspect.DictType):
        return _strict(info.key_type) and _strict(info.value_type)
    if isinstance(info, inspect.UnionType):
        return all(_strict(kind) for kind in info.types)
    return not isinstance(info, inspect.CustomType)


def _as_sent(run: list) -> list:
    """What a run decodes to if it travelled right: Kafka messages as `TravellingRecord`s."""
    return [_travelling(value) for value in run]


def _opened(run: list) -> list:
    """A decoded run with its held messages decoded too, to compare with `_as_sent`."""
    return [_open(value) for value in run]


def _open(value: Any) -> Any:
    if type(value) in _WRAPPERS:
        return msgspec.structs.replace(value, value=_open(value.value))
    if type(value) is tuple and len(value) == 2 and type(value[0]) is msgspec.Raw:
        return (_TRAVELLING.decode(value[0]), _open(value[1]))
    return value


def _travelling(value: Any) -> Any:
    if type(value) in _WRAPPERS:
        return msgspec.structs.replace(value, value=_travelling(value.value))
    if type(value) is tuple and len(value) == 2 and type(value[0]) is Message:
        return (TravellingRecord.of(value[0]), _travelling(value[1]))
    return value


def _kafka_message(value: Any) -> TravellingRecord:
    if type(value) is Message:
        return TravellingRecord.of(value)
    raise NotImplementedError(f"{type(value).__name__} cannot travel as msgpack")


_ENCODER = msgspec.msgpack.Encoder(enc_hook=_kafka_message)
_OUTER_ENCODER = msgspec.msgpack.Encoder()
_OUTER_DECODER = msgspec.msgpack.Decoder(
    tuple[list[str], list[int], list[str | None], bytes, list[tuple[str, msgspec.Raw]]]
)
_BYTES_DECODER = msgspec.msgpack.Decoder(bytes)
_TRAVELLING = msgspec.msgpack.Decoder(TravellingRecord)
