"""A dataflow's shape as its picture shows it, read off the flow the code builds (docs/dataflows.md).

Bytewax's own view (`bytewax.visualize`) draws every operator's ports but neither the Kafka topics
nor the streams a keyed step takes besides its main one (`also`, `lookups`, `items`), and says
nothing of waiting. This one keeps the steps the dataflow module names, links them by every stream
they pass, finds the topics in the sources and sinks inside each step, and says where records wait.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bytewax.dataflow import Dataflow, MultiPort, Operator, SinglePort
from bytewax.inputs import Source
from bytewax.outputs import Sink

MAIN_PORTS = ("up", "ups")
"""The ports of a step's main input; the others (`also`, `lookups`, `items`) bring another step's items."""


@dataclass(frozen=True)
class Step:
    """One step the dataflow module names (its step id within the flow)."""

    name: str
    reads: tuple[str, ...]
    """Input topics its sources read."""
    writes: tuple[str, ...]
    """Output topics its sinks write, the dead letters included."""
    waits: tuple[str, ...]
    """In words, which records wait here for others; empty where nothing waits."""
    passes_on: bool
    """Whether it has a stream out; one that has none writes topics or learns what another step reads."""


@dataclass(frozen=True)
class Link:
    """A stream from one step to another, into the `port` of the downstream step."""

    up: str
    down: str
    port: str


@dataclass(frozen=True)
class Topology:
    name: str
    steps: tuple[Step, ...]
    links: tuple[Link, ...]

    def inputs(self) -> list[str]:
        return list(dict.fromkeys(topic for step in self.steps for topic in step.reads))

    def outputs(self) -> list[str]:
        return list(dict.fromkeys(topic for step in self.steps for topic in step.writes))


def topology(flow: Dataflow) -> Topology:
    producers = {stream: op.step_name for op in flow.substeps for stream in _streams(op, out=True)}
    links = tuple(
        Link(producers[stream], op.step_name, port) for op in flow.substeps for port, stream in _ports(op, out=False)
    ) + tuple(_learned(flow))
    steps = tuple(
        Step(op.step_name, _found(op, Source), _found(op, Sink), tuple(_waits(op)), bool(op.dwn_names))
        for op in flow.substeps
    )
    return Topology(flow.flow_id, steps, links)


def _learned(flow: Dataflow) -> Iterator[Link]:
    """A step that learns facts into a table (`everywhere`) to each step that reads the table (`shortcut`).

    No stream joins them: what links them is the object whose `learn` one calls and whose other
    method the other does (utopia.steps), such as `KnownVenues`.
    """
    learners = {
        id(learn.__self__): op.step_name
        for op in flow.substeps
        if (learn := getattr(op, "learn", None)) is not None and hasattr(learn, "__self__")
    }
    for op in flow.substeps:
        table = getattr(getattr(op, "replace", None), "__self__", None)
        if table is not None and id(table) in learners:
            yield Link(learners[id(table)], op.step_name, "learned")


def _ports(op: Operator, out: bool) -> Iterator[tuple[str, str]]:
    """(port name, stream id) of a step's output ports, or of all its input ports, optional ones too.

    Bytewax lists only the inputs whose annotation is exactly a stream (`ups_names`); an optional
    one (`also: Stream | None`) is a port all the same once given, so every port field counts.
    """
    for field in dataclasses.fields(op):
        if (field.name in op.dwn_names) != out:
            continue
        port = getattr(op, field.name)
        if isinstance(port, SinglePort):
            yield field.name, port.stream_id
        elif isinstance(port, MultiPort):
            yield from ((field.name, stream) for stream in port.stream_ids.values())


def _streams(op: Operator, out: bool) -> list[str]:
    return [stream for _, stream in _ports(op, out)]


def _found(op: Operator, kind: type) -> tuple[str, ...]:
    """The topics of the sources (`.topics`) or sinks (`.topic`) anywhere inside a step."""
    topics: list[str] = []
    for inner in _within(op):
        for field in dataclasses.fields(inner):
            value = getattr(inner, field.name)
            if isinstance(value, kind):
                ours: Any = value  # this project's sources name their `.topics`, its sinks their `.topic`
                topics.extend(ours.topics if kind is Source else [ours.topic])
    return tuple(dict.fromkeys(topics))


def _within(op: Operator) -> Iterator[Operator]:
    yield op
    for inner in op.substeps:
        yield from _within(inner)


def _waits(op: Operator) -> Iterator[str]:
    """Where records wait in a step: what its keyed states declare (`waits`, utopia.steps.state), and windows.

    A state that holds records says what waits (the keyed steps check it when they are built): its
    held records go to the dead letters at the end of a finite input, so the reader of the picture
    should see they wait.
    """
    waits = getattr(getattr(op, "state", None), "waits", None)
    if waits is not None:
        yield waits
    if getattr(op, "lookups", None) is not None:
        yield "lookups wait for the input before them"
    if getattr(op, "items", None) is not None:
        yield "items wait for the input before them"
    windower = getattr(op, "windower", None)
    if windower is not None:
        yield f"counts wait for their {_duration(windower.length)} window to close"


def _duration(length: timedelta) -> str:
    hours, seconds = divmod(int(length.total_seconds()), 3600)
    return f"{hours} h" if not seconds else f"{int(length.total_seconds())} s"
