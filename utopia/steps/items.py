"""What travels between steps: output records, and values that keep their place in the input.

A keyed step's output is a stream of batches of `(key, value)` pairs (`Sent`): written to a topic,
or taken by another keyed step as items already keyed for it. With several processes such values
cross between them, encoded by utopia.steps.wire: they must be msgspec Structs or NamedTuples
(utopia.steps.state says which of their settings are required).
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

from utopia.models import Output
from utopia.steps import wire

Out = tuple[str | None, Output]
"""An output record: its Kafka key and its value."""

V = TypeVar("V")

Item = tuple[str, V]
"""A keyed step's item for another keyed step: the key it goes to, and its value (`Item[NewHolder]`)."""

Sent = tuple[str | None, V]
"""What a keyed step sends, whatever its states make: output records (`Out`), items for another step (`Item`),
and, from a step that tells how far it has sent, marks keyed None. `Sent` alone: of any value."""


@wire.wrapper
class Placed(msgspec.Struct, Generic[V], frozen=True, gc=False, array_like=True):
    """A value with its place in the input: the lane that read it and its position there."""

    lane: int
    position: int
    value: V


class Lookup(msgspec.Struct, frozen=True, gc=False):
    """An item that reads another keyed step's state as of its place in the input (docs/outputs.md#ordering).

    It reaches that step by another path than the records that change the state, so it may arrive
    before records that came earlier in the input, or after later ones. The step holds it until its
    lane has been read past `position` and reads the state as it was at `position`.
    """

    lane: int
    position: int


@wire.wrapper
class Sequenced(Placed[V], Generic[V], frozen=True, gc=False, array_like=True):
    """An item of one keyed step for another, at its place in the input: `position`, then `sub`.

    Items that one record released together (tickets their event released, at its position) go in
    the order of `sub`, such as each one's own position; a step's own records go first at their
    position (docs/outputs.md#ordering).
    """

    sub: int
