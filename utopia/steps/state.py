"""What a keyed step asks of a state class: every hook, what it means, and the checks made when a dataflow is built.

A keyed step makes one state per key (or per shard) by calling the state class with the key, and
feeds it records one at a time, in input order. Only `apply` is always needed; the other hooks
are asked for by what the step does, and `checked` says at build time, in one line, which one is
missing: not when the dataflow first runs in two processes.

Values that one step sends to another (a state's outputs, and what `value`/`value_of_runs` pick of
a record) cross between processes when there are several, encoded by utopia.steps.wire. They must be:

- required: msgspec Structs or NamedTuples (or str, int, float, bool, None), with fields of exact
  types (no `Any`, no bare `tuple`): a plain tuple works in one process and is pickled between
  two, which `checked` refuses where the type is declared (return annotations);
- required for a wrapper (a generic Struct whose field `value` is another value, as `Placed`):
  `array_like=True`, which lets a run of held records travel as columns (`wire.wrapper`);
- tuning: `gc=False` on a Struct (the garbage collector never tracks it: cheaper to make and
  keep by the million; safe for values that never refer back to themselves), `array_like=True`
  on other Structs (encoded without field names: smaller on the wire), and `__slots__` on a
  state class (less memory per key, faster attributes). None of these changes a result.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from functools import partial
from typing import Any, ClassVar, Protocol

from utopia.codec import InRecord
from utopia.steps import wire
from utopia.steps.items import Lookup, Sent

StateClass = Callable[[str], Any]
"""What makes the state of a key: a class that follows `State`, called with the key (or a `partial` of one)."""


class State(Protocol):
    """Every hook a state class may have. Only `apply` is always needed; the others change what it receives.

    What it receives:
    - `placed`: record types whose values come as `Placed(lane, position, value)`, their place in the input;
    - `holds`: record types that may wait in the state for another record; they come as `Sourced` pairs
      `(raw, value)` (placed too: `Placed(lane, position, (raw, value))`), so that one still waiting at the
      end of a finite input goes to the dead letters as it was read. Needs `unfinished`, `waits` and the
      step's `dead_letters`;
    - `waits`: in words, which records wait and for what ("tickets wait for their event"); the pictures
      of docs/dataflows.md mark the step with it (utopia.tools.topology).

    What it is asked, by the steps that need it (utopia.steps.keyed, .joins, .per_shard, .ordering):
    `apply` always, `value` for a changelog, `read` for lookups, `recheck` with a recheck interval,
    `unfinished` where records are held, `at_end` where it has one.
    """

    placed: ClassVar[tuple[type, ...]]
    holds: ClassVar[tuple[type, ...]]
    waits: ClassVar[str]

    def apply(self, value: Any) -> Iterable[Sent] | bool:
        """Applies one value: an alert step's state returns its alerts; a changelog's, whether its value changed."""
        ...

    def value(self) -> Sent:
        """A changelog's current record for the key, built only when it is flushed (at most once per interval)."""
        ...

    def read(self, lookup: Lookup) -> Iterable[Sent]:
        """The answer to a lookup from another step, as of the lookup's place in the input (a join)."""
        ...

    def recheck(self) -> bool:
        """Whether the clock alone changed the value since it was last built (asked every `recheck` interval)."""
        ...

    def at_end(self) -> Iterable[Sent]:
        """What it still has to say at the end of a finite input (not at a stop: the input has not ended)."""
        ...

    def unfinished(self) -> Iterable[tuple[InRecord, str]]:
        """The records still held at the end of a finite input, each with why it waited: dead letters."""
        ...


def checked(
    step_id: str,
    new: StateClass,
    key: Mapping[type, Any],
    values: Mapping[type, Callable[[list], list]],
    *,
    changelog: bool,
    answers: bool,
    in_order: bool,
    recheck: bool,
    dead_letters: bool,
) -> tuple[type, ...]:
    """The record types the state holds, once the hooks the step needs are there and its values can cross.

    Raises a one-line TypeError naming what to add: when the dataflow is built, not when it runs.
    """
    kind = new.func if isinstance(new, partial) else new  # the class behind `partial(Totals, clock=clock)`
    name = getattr(kind, "__name__", repr(kind))
    needed = ["apply"] + ["value"] * changelog + ["read"] * answers + ["recheck"] * recheck
    holds = tuple(getattr(kind, "holds", ()))
    if holds:
        needed += ["unfinished", "waits"]
        if not dead_letters:
            raise TypeError(f"{step_id}: {name} holds records: pass dead_letters=io")
    missing = [hook for hook in needed if not hasattr(kind, hook)]
    if missing:
        raise TypeError(f"{step_id}: {name} has no {', no '.join(missing)} (see utopia.steps.state.State)")
    if in_order and not set(key) <= set(getattr(kind, "placed", ())):
        raise TypeError(f"{step_id}: {name} takes items in input order: its own records must be `placed`")
    declared = [(f"{name}.{hook}", _values_of(getattr(kind, hook), hook)) for hook in _SENDING if hasattr(kind, hook)]
    declared += [(f"the value of {kind.__name__}", _picked(pick)) for kind, pick in values.items()]
    for where, kinds in declared:
        for kind in kinds:
            problem = wire.cannot_cross(kind)
            if problem is not None:
                raise TypeError(
                    f"{step_id}: {where} sends {problem}: make it a msgspec Struct or a NamedTuple (utopia.steps.state)"
                )
    return holds


_SENDING = ("apply", "value", "read", "at_end")
"""The hooks whose returns another step may receive: `value` returns one pair, the others pairs."""
_SEQUENCES = {list, tuple, Iterable, Iterator, Generator}


def _values_of(function: Any, hook: str) -> list[Any]:
    """The value types a function declares it returns: of its `(key, value)` pairs, of a run (`run`), or one (`one`).

    What is not declared (no annotation, a name it cannot resolve, a bare `tuple`) is not judged.
    """
    try:
        returned = typing.get_type_hints(function).get("return")
    except (NameError, TypeError):
        return []
    if returned is None or returned is bool:
        return []
    if hook == "one":
        return [returned]
    if hook == "run":
        return _items(returned)
    pairs = [returned] if hook == "value" else _items(returned)
    return [typing.get_args(pair)[1] for pair in pairs if _is_pair(pair)]


def _picked(pick: Callable[[list], list]) -> list[Any]:
    """The value types a run function declares, or the per-record `value` it applies (`engine.each_value`)."""
    if isinstance(pick, partial):
        return _values_of(pick.args[-1], "one")
    return _values_of(pick, "run")


def _items(returned: Any) -> list[Any]:
    """The item types of a returned sequence, generator or iterable (a `tuple[X, ...]`, or each of a `tuple[X, Y]`)."""
    if typing.get_origin(returned) in (typing.Union, types.UnionType):
        return [item for member in typing.get_args(returned) for item in _items(member)]
    origin, args = typing.get_origin(returned), typing.get_args(returned)
    if origin not in _SEQUENCES or not args:
        return []
    if origin is tuple and args[-1] is not Ellipsis:
        return list(args)
    return [args[0]]


def _is_pair(kind: Any) -> bool:
    args = typing.get_args(kind)
    return typing.get_origin(kind) is tuple and len(args) == 2 and args[1] is not Ellipsis
