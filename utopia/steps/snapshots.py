"""A shard's states in a recovery snapshot, pickled again only where a key changed since the last one.

Bytewax asks each shard touched in an epoch for a snapshot at the epoch's end, and at 100k
customers every shard is touched in every epoch: pickling a shard's whole dict each time made a
snapshot cost as much as all its keys. Here a shard's keys fall into buckets (by `hash`, which a
string keeps once computed), each bucket's pickled bytes stay from the last snapshot, and only the
buckets holding a key touched since are pickled again. A snapshot is the list of the buckets' bytes:
copying bytes costs far less than pickling the objects in them, so its cost follows the keys
changed in the epoch, not the shard's size. What it costs in turn: the bytes of every bucket stay in
memory, about the size of the shard's part of the store.

`hash` of a string differs between processes, so the buckets are remade (every key pickled once)
after a restore. The buckets grow with the shard, a few dozen keys each, so that one changed key
costs about the same whatever the number of keys.

A bucket whose states are all of one class with `__slots__` (that pickles the default way) is
pickled as rows of slot values, read in one C loop: pickle's default way with a slotted object
builds a dict of its slots for every object, which made it 2 to 3 times as slow (`_rows`). A
restore gives each state what pickle would: its slots, or its `__setstate__` called with them, by the
names the writing version gave them (so a `__setstate__` can read an older form, as with pickle).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from itertools import islice
from operator import attrgetter
from typing import Any

from utopia.config import ConfigError

KEYS_PER_BUCKET = 32
"""A bucket is pickled whole when one of its keys changes, and each bucket's pickle costs a call
and a small header: at most this many keys on average (`python -m utopia.tools.recovery_bench
--snapshots` measures it)."""


def restored(states: dict[str, Any] | list[bytes]) -> dict[str, Any]:
    """A shard's states as a snapshot kept them: a list of buckets' bytes, or (an earlier version's) one dict."""
    if isinstance(states, dict):
        return states
    whole: dict[str, Any] = {}
    for bucket in states:
        whole.update(unpickled(bucket))
    return whole


def pickled(bucket: dict[str, Any]) -> bytes:
    """A bucket's states as bytes: as rows of slot values where they are all of one slotted class, else as a dict."""
    classes = set(map(type, bucket.values()))
    if len(classes) == 1:
        [kind] = classes
        row = _rows(kind)
        if row is not None:
            try:
                rows = list(map(row, bucket.values()))
            except AttributeError:  # a slot left unset: pickle knows how to leave it out
                pass
            else:
                return pickle.dumps((kind, _slots(kind), list(bucket), rows), pickle.HIGHEST_PROTOCOL)
    return pickle.dumps(bucket, pickle.HIGHEST_PROTOCOL)


def unpickled(data: bytes) -> dict[str, Any]:
    """A bucket's states from `pickled`'s bytes."""
    bucket = pickle.loads(data)
    if isinstance(bucket, dict):
        return bucket
    kind, names, keys, rows = bucket  # the slots' names as the writing version had them
    set_state = getattr(kind, "__setstate__", None)  # as pickle would call it: with (None, the slots' values)
    if set_state is None and names != _slots(kind):
        raise ConfigError(
            f"the recovery store was written by a version whose {kind.__name__} kept other fields: "
            "start with a new recovery store"
        )
    new, states = kind.__new__, {}
    for key, row in zip(keys, rows, strict=True):
        state = states[key] = new(kind)
        values = zip(names, row if len(names) > 1 else (row,), strict=True)
        if set_state is None:
            for name, value in values:
                setattr(state, name, value)
        else:
            set_state(state, (None, dict(values)))
    return states


_ROWS: dict[type, Callable[[Any], Any] | None] = {}


def _rows(kind: type) -> Callable[[Any], Any] | None:
    """What reads a state's slot values at once (a tuple, or the value of a single slot); None if pickle must."""
    if kind not in _ROWS:
        plain = (
            "__dict__" not in dir(kind)
            and kind.__reduce_ex__ is object.__reduce_ex__
            and kind.__reduce__ is object.__reduce__
            and kind.__getstate__ is object.__getstate__  # type: ignore[attr-defined]
        )
        names = _slots(kind) if plain else ()
        _ROWS[kind] = attrgetter(*names) if names else None
    return _ROWS[kind]


def _slots(kind: type) -> tuple[str, ...]:
    """Every slot of a class and its bases, base first (the order `_rows` reads them in)."""
    names: list[str] = []
    for base in reversed(kind.__mro__):
        slots = base.__dict__.get("__slots__", ())
        names.extend((slots,) if isinstance(slots, str) else slots)
    return tuple(name for name in names if name not in ("__dict__", "__weakref__"))


class Buckets:
    """Which keys of a shard changed since its last snapshot, and the pickled bytes of every bucket of keys.

    The shard adds the keys it touches (`touched`), a whole batch at a time; `snapshot` then pickles
    the buckets of those keys again, and gives every bucket's bytes.
    """

    def __init__(self) -> None:
        self.touched: set[str | None] = set()
        """Keys whose state may have changed since the last snapshot (None: a batch's mark, not a key)."""
        self.mask = 0
        self.members: list[dict[str, None]] = []
        """Per bucket, its keys (in the order first seen): empty until the first snapshot."""
        self.placed = 0
        """How many keys have a bucket: the first ones of the shard's dict, which only grows."""
        self.pickled: dict[int, bytes] = {}
        """Per bucket, its keys' states as the last snapshot pickled them."""

    def snapshot(self, states: dict[str, Any]) -> list[bytes]:
        """The bytes of every bucket, the buckets with a touched key pickled again; no key is touched after."""
        touched, self.touched = self.touched, set()
        if not self.members or len(states) > KEYS_PER_BUCKET * len(self.members):
            changed = self._regroup(states)
        else:
            changed = self._place(touched, states)
        members, kept = self.members, self.pickled
        state_of = states.__getitem__
        for bucket in changed:
            keys = members[bucket]
            kept[bucket] = pickled(dict(zip(keys, map(state_of, keys))))
        return list(kept.values())

    def _regroup(self, states: dict[str, Any]) -> Iterable[int]:
        """Every key in buckets anew, enough of them for the keys there are: all of them to pickle."""
        count = 1
        while count * KEYS_PER_BUCKET < len(states):
            count *= 2
        self.mask = mask = count - 1
        members: list[dict[str, None]] = [{} for _ in range(count)]
        self.members = members
        for key in states:
            members[hash(key) & mask][key] = None
        self.pickled, self.placed = {}, len(states)
        return [bucket for bucket in range(count) if members[bucket]]

    def _place(self, touched: set[str | None], states: dict[str, Any]) -> set[int]:
        """The buckets of the touched keys that have a state; new keys (the dict's last ones) join theirs first.

        In C loops but for the new keys: most snapshots touch many keys and bring few new ones.
        """
        members, mask = self.members, self.mask
        new = len(states) - self.placed  # a shard's states are never removed, only added
        if new:
            for key in reversed(list(islice(reversed(states.keys()), new))):
                members[hash(key) & mask][key] = None
            self.placed = len(states)
        return set(map(mask.__and__, map(hash, states.keys() & touched)))
