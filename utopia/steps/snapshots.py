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
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import Any

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
        whole.update(pickle.loads(bucket))
    return whole


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
        self.pickled: dict[int, bytes] = {}
        """Per bucket, its keys' states as the last snapshot pickled them."""

    def snapshot(self, states: dict[str, Any]) -> list[bytes]:
        """The bytes of every bucket, the buckets with a touched key pickled again; no key is touched after."""
        touched, self.touched = self.touched, set()
        if not self.members or len(states) > KEYS_PER_BUCKET * len(self.members):
            changed = self._regroup(states)
        else:
            changed = self._place(touched, states)
        members, pickled = self.members, self.pickled
        for bucket in changed:
            pickled[bucket] = pickle.dumps({key: states[key] for key in members[bucket]}, pickle.HIGHEST_PROTOCOL)
        return list(pickled.values())

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
        self.pickled = {}
        return [bucket for bucket in range(count) if members[bucket]]

    def _place(self, touched: set[str | None], states: dict[str, Any]) -> set[int]:
        """The buckets of the touched keys that have a state (a new key joins its bucket)."""
        members, mask, changed = self.members, self.mask, set()
        for key in states.keys() & touched:
            bucket = hash(key) & mask
            members[bucket][key] = None
            changed.add(bucket)
        return changed
