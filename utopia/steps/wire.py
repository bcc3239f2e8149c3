"""How a keyed step's parcels travel to a worker in another process: msgspec run by run, not pickle item by item.

With several processes, about half of what a keyed step receives comes from another process, and
Bytewax pickles whatever crosses. Pickle handles a msgspec Struct through its generic `__reduce__`
protocol, one record at a time: pickling `(key, Placed(...))` took 0.30 us against 0.04 us for a
pair of strings. msgspec encodes and decodes a whole list of values of one type in one C call,
given that type.

So the pairs of the parcels bound for one worker (utopia.steps bundles them) are cut into runs of
consecutive pairs whose values have one shape; each run travels as msgpack with a descriptor of its
type, from which the receiving process builds, once, the typed decoder:

- a msgspec Struct, a NamedTuple, `str`, `int`, `float`, `bool` or `None`: itself;
- a wrapper (a generic Struct with one parameter, its field `value`, such as `Placed`): the wrapper
  of the shape of its value, `Placed[Event]`;
- a record that may wait, `(raw, record)` with `raw` a Kafka message: `held[...]`, the shape of the
  record. The run's messages travel beside the records, one list per field, and arrive still
  encoded (`utopia.codec.FarMessages`): a message is only read if its record waits, and most never do.

A run of plain values travels as the list of its `(key, value)` pairs, which the receiver decodes
in one C call, pairs and all: keys are text or None (a keyed step takes each key's crc32 of
`key.encode()`). A run of held records travels as columns: keys, records (and the wrapper's other
fields), messages. A shape travels as msgpack only if nothing in its type would decode loosely
(`Any`, a bare `tuple`) and its first run in the process comes back equal to what was sent; other
runs, such as raw records that are already `InRecord`s (from files, or resumed from a snapshot), and
parcels cut into too many short runs, are pickled. How a parcel travelled never changes what arrives.
"""

from __future__ import annotations

import importlib
import pickle
import types
import typing
from itertools import accumulate, chain, groupby, repeat
from operator import attrgetter, itemgetter
from typing import Any

import msgspec
import msgspec.inspect as inspect
from confluent_kafka import Message

from utopia.codec import FarMessage, FarMessages, as_in_record

Pair = tuple[str | None, Any]

_WRAPPERS: set[type] = set()
_PICKLED = "pickle"
_PRIMITIVES: dict[type, str] = {str: "str", int: "int", float: "float", bool: "bool", type(None): "None"}
_BY_NAME: dict[str, Any] = {name: (None if kind is type(None) else kind) for kind, name in _PRIMITIVES.items()}
_INDEX = [bytes((n,)) for n in range(256)]
"""A run's shape in a bundle's order: one byte, so a bundle of more than 256 shapes is pickled whole."""


class _Held:
    """The shape of a record that may wait: `(raw, record)`, its raw record a Kafka message.

    It arrives as `(FarMessage, record)`, which `utopia.codec.as_in_record` reads for a dead letter.
    """


class _Other:
    """The shape of values that travel pickled: tuples other than `(Kafka message, record)`."""


_VALUE, _FIRST, _SECOND = attrgetter("value"), itemgetter(0), itemgetter(1)


def wrapper(cls: type) -> type:
    """Register a generic Struct with one type parameter, its field `value`: a run travels typed by its values."""
    _WRAPPERS.add(cls)
    return cls


def cannot_cross(kind: Any) -> str | None:
    """Why values declared of this type would travel pickled, in words (None: as msgpack, exactly).

    For the check made when a dataflow is built (utopia.steps.state): what a type does not say
    (`Any`, a type variable) is not judged; the first run of each shape is still checked as it goes.
    """
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return next(filter(None, map(cannot_cross, args)), None)
    if origin in _WRAPPERS:
        return cannot_cross(args[0]) if args else None
    if kind is None or kind in _PRIMITIVES:
        return None
    if isinstance(kind, type) and (issubclass(kind, msgspec.Struct) or _is_named_tuple(kind)):
        if _strict(inspect.type_info(kind)):
            return None
        return f"{kind.__qualname__}, which has a field of no exact type (Any, a bare tuple)"
    if kind in (tuple, list, dict, set) or origin in (tuple, list, dict, set):
        return f"a plain {getattr(origin, '__name__', None) or kind.__name__}"
    return None


def encode(parcels: list[tuple[str, list[Pair]]]) -> bytes:
    """Shards' parcels, `(shard, pairs)`, as bytes for `decode`: their pairs by shape, and the order they came in."""
    names = list(map(_FIRST, parcels))
    counts = list(map(len, map(_SECOND, parcels)))
    pairs = parcels[0][1] if len(parcels) == 1 else list(chain.from_iterable(map(_SECOND, parcels)))
    values = list(map(_SECOND, pairs))
    spans = _spans(values, 0)
    if len(spans) == 1:  # most bundles: one shape, no order to keep
        columns: dict[Any, list[Pair]] = {spans[0][0]: pairs}
        order = b""
    else:
        columns, order_parts = {}, []
        index: dict[Any, bytes] = {}
        for shape, start, end in spans:
            column = columns.get(shape)
            if column is None:
                if len(columns) == len(_INDEX):  # more shapes than one byte tells apart: pickled whole
                    return _OUTER_ENCODER.encode((names, counts, b"", [(_PICKLED, _pickled(pairs))]))
                column = columns[shape] = []
                index[shape] = _INDEX[len(index)]
            column.extend(pairs[start:end])
            order_parts.append(index[shape] * (end - start))
        order = b"".join(order_parts)
    runs = []
    for shape, column in columns.items():
        descriptor = _descriptor(shape, column)
        try:
            payload = None if descriptor is None else _encoded(shape, column, values if column is pairs else None)
        except (TypeError, ValueError, msgspec.MsgspecError):  # a value msgpack cannot carry, whatever its type says
            payload = None
        if payload is None:
            descriptor, payload = _PICKLED, _pickled(column)
        runs.append((descriptor, payload))
    return _OUTER_ENCODER.encode((names, counts, order, runs))


def decode(data: bytes) -> list[tuple[str, list[Pair]]]:
    """The parcels `encode` made these bytes of, each as a plain list of pairs."""
    names, counts, order, runs = _OUTER_DECODER.decode(data)
    columns = [
        pickle.loads(payload) if descriptor == _PICKLED else _decoded(descriptor, payload)
        for descriptor, payload in runs
    ]
    if len(columns) == 1:
        pairs = columns[0]
    else:  # each pair from the column of its shape, in the order they were sent (C loops)
        pairs = list(map(next, map([iter(column) for column in columns].__getitem__, order)))
    if len(names) == 1:
        return [(names[0], pairs)]
    ends = list(accumulate(counts))
    return list(zip(names, map(pairs.__getitem__, map(slice, [0, *ends], ends))))


def shapes(data: bytes) -> list[str]:
    """The descriptors of the runs a bundle's bytes carry (`pickle` for those that travel pickled)."""
    return [descriptor for descriptor, _ in _OUTER_DECODER.decode(data)[3]]


def _held_in(shape: Any) -> tuple[type[msgspec.Struct] | None, Any] | None:
    """For a shape of held records, `(wrapper or None, shape of the record)`; None for other shapes."""
    if type(shape) is not tuple:
        return None
    outer, inner = shape
    if outer is _Held:
        return None, inner
    if type(inner) is tuple and inner[0] is _Held and outer.__struct_config__.array_like:
        return outer, inner[1]
    return None


def _encoded(shape: Any, run: list[Pair], values: list | None = None) -> bytes:
    """A run of pairs of one shape as msgpack: the pairs themselves, or for held records their columns.

    `values` are the run's values if they are at hand already.
    """
    held = _held_in(shape)
    if held is None:
        return _ENCODER.encode(run)
    outer, _ = held
    if values is None:
        values = list(map(_SECOND, run))
    if outer is None:
        fields, sourced = [], values
    else:  # the wrapper's fields, each a column, its value split into message and record
        fields = [list(map(attrgetter(field), values)) for field in outer.__struct_fields__ if field != "value"]
        sourced = list(map(_VALUE, values))
    messages = FarMessages.encode(list(map(_FIRST, sourced)))
    return _ENCODER.encode((list(map(_FIRST, run)), fields, list(map(_SECOND, sourced)), messages))


def _decoded(descriptor: str, payload: memoryview) -> list[Pair]:
    decoder, outer = _decoder(descriptor)
    if outer is False:
        return decoder.decode(payload)
    keys, fields, records, messages = decoder.decode(payload)
    far = FarMessages(messages)
    sourced = zip(map(FarMessage, repeat(far), range(len(records))), records)
    if outer is None:
        return list(zip(keys, sourced))
    names = outer.__struct_fields__
    columns = iter(fields)
    arguments = [sourced if name == "value" else next(columns) for name in names]
    return list(zip(keys, map(outer, *arguments)))


def _pickled(pairs: list[Pair]) -> bytes:
    return pickle.dumps(pairs, protocol=pickle.HIGHEST_PROTOCOL)


def _spans(values: list, offset: int) -> list[tuple[Any, int, int]]:
    """Consecutive values of one shape, as (shape, start, end) from `offset`; `_Other` is what has no descriptor."""
    kinds = set(map(type, values))
    if len(kinds) == 1:  # one type (most runs): no grouping
        groups: Any = [(kinds.pop(), len(values))]
    else:
        groups = ((kind, len(list(group))) for kind, group in groupby(map(type, values)))
    spans: list[tuple[Any, int, int]] = []
    start = 0
    for kind, length in groups:
        end = start + length
        if kind in _WRAPPERS:
            inner = _spans(list(map(_VALUE, values[start:end])), offset + start)
            spans.extend(((kind, shape), s, e) for shape, s, e in inner)
        elif kind is tuple:
            spans.extend(_tuple_spans(values[start:end] if length < len(values) else values, offset + start))
        else:
            spans.append((kind, offset + start, offset + end))
        start = end
    return spans


def _tuple_spans(values: list, offset: int) -> list[tuple[Any, int, int]]:
    """The spans of tuples from `offset`: records that may wait, `(message, record)`, by the shape of the record.

    A raw record that is already an `InRecord` (read from a file, or resumed from a snapshot) travels pickled.
    """
    if set(map(len, values)) != {2} or set(map(type, map(_FIRST, values))) != {Message}:
        return [(_Other, offset, offset + len(values))]
    return [((_Held, shape), s, e) for shape, s, e in _spans(list(map(_SECOND, values)), offset)]


_checked: dict[Any, str | None] = {}
"""What is known of each shape in this process: its descriptor, or None if it is pickled."""


def _descriptor(shape: Any, run: list[Pair]) -> str | None:
    """The shape's descriptor if it travels as msgpack; checked on its first run in this process."""
    try:
        return _checked[shape]
    except KeyError:
        pass
    descriptor = _describe(shape)
    if descriptor is not None:
        try:
            arrived = _decoded(descriptor, memoryview(_encoded(shape, run)))
            if not _strict(inspect.type_info(_type_of(shape))) or _as_read(arrived) != _as_read(run):
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
    """The type a shape's values are checked as: a held record's, its message aside (it travels by field)."""
    if type(shape) is tuple:
        outer, inner = shape
        return _type_of(inner) if outer is _Held else outer[_type_of(inner)]
    return None if shape is type(None) else shape


def _parse(descriptor: str) -> tuple[Any, bool]:
    """The type of the values a descriptor names (the inverse of `_describe`), and whether they are held."""
    if descriptor.endswith("]"):
        outer, inner = descriptor[:-1].split("[", 1)
        kind, held = _parse(inner)
        if outer == "held":
            return kind, True
        return _named(outer)[kind], held
    if descriptor in _BY_NAME:
        return _BY_NAME[descriptor], False
    return _named(descriptor), False


def _named(name: str) -> Any:
    module, qualname = name.split(":")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


_decoders: dict[str, tuple[msgspec.msgpack.Decoder, Any]] = {}


def _decoder(descriptor: str) -> tuple[msgspec.msgpack.Decoder, Any]:
    """The decoder of a descriptor's runs, and what it decodes: pairs (False), or held columns in a wrapper or not."""
    found = _decoders.get(descriptor)
    if found is None:
        # The types are made at run time from the descriptor: mypy cannot check them (the ignores below).
        kind, held = _parse(descriptor)
        if not held:
            pairs = list[tuple[str | None, kind]]  # type: ignore[valid-type]
            found = (msgspec.msgpack.Decoder(pairs), False)
        else:
            outer = None if descriptor.startswith("held[") else _named(descriptor.split("[", 1)[0])
            record = kind if outer is None else _parse(descriptor.split("[", 1)[1][:-1])[0]
            if outer is None:
                fields: Any = tuple[()]
            else:
                hints = msgspec.structs.fields(outer[record])
                columns = tuple(list[field.type] for field in hints if field.name != "value")  # type: ignore[name-defined]
                fields = tuple[columns]  # type: ignore[valid-type]
            held_columns = tuple[list[str | None], fields, list[record], memoryview]  # type: ignore[valid-type]
            found = (msgspec.msgpack.Decoder(held_columns), outer)
        _decoders[descriptor] = found
    return found


def _strict(info: inspect.Type) -> bool:
    """Whether a type decodes exactly to what was encoded: nothing in it is `Any` or an untyped container."""
    if isinstance(info, inspect.AnyType):
        return False
    if isinstance(info, inspect.StructType | inspect.NamedTupleType):
        return all(_strict(field.type) for field in info.fields)
    if isinstance(
        info, inspect.TupleType | inspect.VarTupleType | inspect.ListType | inspect.SetType | inspect.FrozenSetType
    ):
        items = info.item_types if isinstance(info, inspect.TupleType) else (info.item_type,)
        return all(_strict(item) for item in items)
    if isinstance(info, inspect.DictType):
        return _strict(info.key_type) and _strict(info.value_type)
    if isinstance(info, inspect.UnionType):
        return all(_strict(kind) for kind in info.types)
    return not isinstance(info, inspect.CustomType)


def _as_read(run: list[Pair]) -> list[Pair]:
    """A run of pairs with every raw record, sent or arrived, as the `InRecord` it stands for, to compare."""
    return [(key, _read(value)) for key, value in run]


def _read(value: Any) -> Any:
    if type(value) in _WRAPPERS:
        return msgspec.structs.replace(value, value=_read(value.value))
    if type(value) is tuple and len(value) == 2 and type(value[0]) in (Message, FarMessage):
        return (as_in_record(value[0]), _read(value[1]))
    return value


_ENCODER = msgspec.msgpack.Encoder()
_OUTER_ENCODER = msgspec.msgpack.Encoder()
_OUTER_DECODER = msgspec.msgpack.Decoder(tuple[list[str], list[int], bytes, list[tuple[str, memoryview]]])
"""Each run's payload is a view into the bundle's bytes, not a copy."""
