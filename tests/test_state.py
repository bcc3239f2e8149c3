"""A state class that lacks a hook its step needs, or sends a value that cannot cross processes, stops the build.

The message names what to add, in one line, when the dataflow is built (utopia.steps.state): not
when it first runs in two processes.
"""

from datetime import timedelta
from typing import Any, NamedTuple

import msgspec
import pytest
from bytewax.dataflow import Dataflow

from utopia.io.testing import TestingIO
from utopia.models import Event, Ticket
from utopia.rules.sales import counted
from utopia.steps import Placed, in_order, items_per_key, keyed_state, read, wire
from utopia.steps.keys import BY_EVENT, EVENTS_ONLY


class EventTickets(NamedTuple):
    eventid: str
    tickets: int


class Loose(msgspec.Struct, frozen=True):
    anything: Any


class CountAsTuple:
    """Sends its count to the artist as a plain tuple: fine in one process, pickled between two."""

    def __init__(self, eventid: str):
        self.eventid, self.tickets = eventid, 0

    def apply(self, _: Event | Ticket) -> list[tuple[str, tuple[str, int]]]:
        self.tickets += 1
        return [("a-1", (self.eventid, self.tickets))]


class CountAsNamedTuple(CountAsTuple):
    def apply(self, _: Event | Ticket) -> list[tuple[str, EventTickets]]:
        self.tickets += 1
        return [("a-1", EventTickets(self.eventid, self.tickets))]


class CountAsLoose(CountAsTuple):
    def apply(self, _: Event | Ticket) -> list[tuple[str, Placed[Loose]]]:
        return []


class NoValue:
    def __init__(self, key: str): ...

    def apply(self, _: Any) -> bool:
        return True


class Holds(NoValue):
    holds = (Ticket,)
    waits = "tickets wait for their event"

    def unfinished(self) -> list:
        return []


def pair(record: Ticket) -> tuple[str, str]:
    return record.id, record.eventid


def build(step, *args, **kwargs) -> None:
    io = TestingIO([])
    flow = Dataflow("test")
    step("step", read("records", flow, io, {Event: [], Ticket: ["eventid"]}), *args, **kwargs)


def test_a_plain_tuple_sent_to_another_step_is_refused_with_what_to_use():
    with pytest.raises(TypeError) as refused:
        build(keyed_state, BY_EVENT, CountAsTuple)
    assert str(refused.value) == (
        "test.step: CountAsTuple.apply sends a plain tuple: make it a msgspec Struct or a "
        "NamedTuple (utopia.steps.state)"
    )
    build(keyed_state, BY_EVENT, CountAsNamedTuple)


def test_a_struct_with_a_loose_field_is_refused_even_in_a_wrapper():
    with pytest.raises(TypeError, match=r"CountAsLoose.apply sends Loose, which has a field of no exact type"):
        build(keyed_state, BY_EVENT, CountAsLoose)


def test_a_picked_value_is_checked_too():
    with pytest.raises(TypeError, match=r"the value of Event sends a plain tuple"):
        build(keyed_state, BY_EVENT, NoValue, value=pair)
    build(keyed_state, BY_EVENT, NoValue, value_of_runs={Ticket: counted})


def test_what_the_check_refuses_is_what_travels_pickled():
    refused = [("a-1", ("e-1", 3))] * 3
    passed = [("a-1", EventTickets("e-1", 3))] * 3
    assert wire.cannot_cross(tuple[str, int]) == "a plain tuple"
    assert wire.shapes(wire.encode([("0", refused)])) == ["pickle"]
    assert (wire.cannot_cross(EventTickets), wire.shapes(wire.encode([("0", passed)]))) == (
        None,
        ["tests.test_state:EventTickets"],
    )


def test_a_changelog_state_needs_its_value():
    with pytest.raises(TypeError) as refused:
        build(keyed_state, BY_EVENT, NoValue, changelog=timedelta(seconds=1))
    assert str(refused.value) == "test.step: NoValue has no value (see utopia.steps.state.State)"


def test_a_clock_needs_recheck_and_the_class_behind_a_partial_is_checked():
    io = TestingIO([])
    flow = Dataflow("test")
    items = read("records", flow, io, {Event: []})
    with pytest.raises(TypeError, match=r"^test.step: NoValue has no value, no recheck "):
        items_per_key("step", items, NoValue, changelog=timedelta(seconds=1), recheck=timedelta(seconds=1))


def test_a_state_that_holds_records_needs_the_dead_letters():
    with pytest.raises(TypeError) as refused:
        build(keyed_state, BY_EVENT, Holds)
    assert str(refused.value) == "test.step: Holds holds records: pass dead_letters=io"
    build(keyed_state, BY_EVENT, Holds, dead_letters=TestingIO([]))


def test_items_in_order_need_the_records_placed():
    io = TestingIO([])
    flow = Dataflow("test")
    records = read("records", flow, io, {Event: []})
    items = items_per_key("items", records, NoValue)
    with pytest.raises(TypeError, match=r"NoValue takes items in input order: its own records must be `placed`"):
        in_order("step", records, EVENTS_ONLY, NoValue, items)


def test_every_hook_is_listed_in_one_place():
    from utopia.steps.state import State

    hooks = {"placed", "holds", "waits", "apply", "value", "read", "recheck", "at_end", "unfinished"}
    assert hooks <= set(State.__annotations__) | set(vars(State))
    assert all(vars(State)[hook].__doc__ for hook in hooks - {"placed", "holds", "waits"})
