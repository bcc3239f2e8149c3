"""What a keyed step sends to a worker in another process arrives exactly as it was sent (utopia.steps.wire)."""

import pickle
from typing import Any

import msgspec
import pytest
from confluent_kafka import Message

from tests.test_batching import records
from utopia.cli import dataflow_names, load_build
from utopia.codec import FarMessage, InRecord, as_in_record
from utopia.io.runtime import plan_workers
from utopia.io.testing import TestingIO, run, with_kafka_messages
from utopia.models import Event, Ticket
from utopia.rules.venues import NewHolder
from utopia.steps import Lookup, Placed, Sequenced, engine, wire
from utopia.steps.engine import _Bundle
from utopia.steps.shards import Mark

EVENT = Event(id="e-1", artistid="a-1", venueid="v-1", capacity=10, eventdate="2027-01-01T20:00:00Z")
TICKET = Ticket("t-1", "c-1", "e-1", 12.5)


def message(offset: int, key: bytes | None = b"t-1") -> Message:
    return Message(
        topic="data-demo-tickets",
        partition=2,
        offset=offset,
        key=key,
        value=b'{"id":"t-1"}',
        timestamp=(1, 1_700_000_000_000 + offset),
    )


class Loose(msgspec.Struct, frozen=True):
    """A value msgspec could not decode to what was sent: its field says nothing of its type."""

    anything: Any


def travelled(bundle: list) -> list:
    return pickle.loads(pickle.dumps(_Bundle(bundle)))


def as_read(value: Any) -> Any:
    """A value with every raw record, whatever form it travelled in, as the `InRecord` it stands for."""
    if isinstance(value, Message | FarMessage):
        return as_in_record(value)
    if isinstance(value, Placed):
        return msgspec.structs.replace(value, value=as_read(value.value))
    if type(value) is tuple:
        return tuple(as_read(item) for item in value)
    return value


def as_read_bundle(bundle: list) -> list:
    return [(shard, [(key, as_read(value)) for key, value in pairs]) for shard, pairs in bundle]


def test_every_shape_arrives_as_it_was_sent():
    sent = [
        ("0", [("c-1", None)] * 3 + [("c-2", "text"), ("c-3", 7), ("c-4", 2.5), ("c-5", True)]),
        (
            "1",
            [
                ("e-1", EVENT),
                ("e-1", Placed(3, 10, EVENT)),
                ("e-1", Placed(3, 11, None)),
                ("e-1", Placed(3, 12, "c-9")),
                ("v-1", NewHolder("c-1", 40)),
                ("e-2", Sequenced(3, 13, "z", 2)),
                ("c-1", Lookup(3, 14)),
                (None, Mark(3, 20, 1)),
            ],
        ),
        (
            "2",
            [
                ("e-1", (message(5), TICKET)),
                ("e-1", (message(6, key=b"\xff\xfe"), TICKET)),
                ("e-1", (message(7, key=None), None)),
                ("e-1", Placed(3, 15, (message(8), "c-1"))),
                ("e-1", Sequenced(3, 16, (message(9), None), 4)),
            ],
        ),
        (
            "3",
            [
                ("e-1", (InRecord("data-demo-tickets", 0, 3, "t-1", b"{}", 0), TICKET)),  # from a file: pickled
                ("x", (1, 2, 3)),
                ("x", {"a": (1, 2)}),
                ("x", Loose((1, 2))),
            ],
        ),
    ]
    arrived = travelled(sent)
    assert as_read_bundle(arrived) == as_read_bundle(sent)
    # Every value of its own type: a Struct is not a list, a tuple is not a list, a wrapper keeps its value's type.
    sent_types = [type(v) for _, pairs in sent for _, v in pairs]
    assert [type(v) for _, pairs in arrived for _, v in pairs] == sent_types
    assert arrived[3][1][3][1].anything == (1, 2)  # a tuple in an `Any` field: pickled, still a tuple
    # A Kafka message arrives as the raw record it was: its key kept as text, or as bytes when it is not UTF-8.
    held = arrived[2][1]
    assert as_in_record(held[0][1][0]) == InRecord("data-demo-tickets", 2, 5, "t-1", b'{"id":"t-1"}', 1_700_000_000_005)
    assert as_in_record(held[1][1][0]).key == b"\xff\xfe"
    assert as_in_record(held[2][1][0]).key is None
    # Pickled into a recovery snapshot, a message from another process is the record it stands for.
    assert pickle.loads(pickle.dumps(held[0][1][0])) == as_in_record(held[0][1][0])


def test_what_msgspec_could_not_decode_exactly_travels_pickled():
    travelled([("0", [("x", Loose((1, 2)))] * 5 + [("y", Placed(1, 2, Loose("a")))] * 5)])
    assert wire._checked[Loose] is None
    assert wire._checked[(Placed, Loose)] is None
    travelled([("0", [("v-1", NewHolder("c-1", 1))] * 5)])
    assert wire._checked[NewHolder] == "utopia.rules.venues:NewHolder"


def test_values_of_several_shapes_come_back_in_their_order():
    mixed = [("k", "text") if n % 2 else ("k", n) for n in range(40)] + [(None, Mark(1, 2, 3))]
    payload = wire.encode([("0", mixed[:20]), ("1", mixed[20:])])
    assert wire.shapes(payload) == ["int", "str", "utopia.steps.shards:Mark"]
    assert wire.decode(payload) == [("0", mixed[:20]), ("1", mixed[20:])]


def test_a_bundle_of_more_shapes_than_one_byte_tells_apart_travels_pickled_whole(monkeypatch):
    monkeypatch.setattr(wire, "_INDEX", wire._INDEX[:2])  # as if a byte had two values
    mixed = [("k", "text"), ("k", 1), ("k", 2.5), (None, Mark(1, 2, 3))]
    payload = wire.encode([("0", mixed)])
    assert wire.shapes(payload) == ["pickle"]
    assert wire.decode(payload) == [("0", mixed)]


@pytest.mark.parametrize("name", dataflow_names())
def test_what_every_dataflow_sends_between_workers_arrives_unchanged(name, monkeypatch):
    bundles: list[_Bundle] = []

    class Recorded(_Bundle):
        __slots__ = ()

        def __init__(self, *args):
            super().__init__(*args)
            bundles.append(self)

    monkeypatch.setattr(engine, "_Bundle", Recorded)
    plan_workers(3)
    try:
        flow = load_build(name)(TestingIO(records(), batch_size=50))
    finally:
        plan_workers(1)
    run(flow, 3)
    sent_bundles = [bundle for bundle in bundles if bundle]  # a worker with nothing to send gets no bundle
    assert sent_bundles
    for bundle in sent_bundles:
        sent = [(shard, [(key, with_kafka_messages(value)) for key, value in pairs]) for shard, pairs in bundle]
        assert as_read_bundle(travelled(sent)) == as_read_bundle(sent)
        # everything a dataflow sends has a shape msgpack carries exactly
        assert "pickle" not in wire.shapes(wire.encode(sent))
