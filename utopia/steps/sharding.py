"""Shard names that Bytewax spreads evenly over 2, 3, 4, 6 or 12 workers.

Bytewax 0.21 sends a key to worker `siphash13(key) % workers` (Rust's DefaultHasher with zero keys,
src/timely.rs). 24 shards with arbitrary names split 14:10 over two workers, so one worker does 40%
more of the keyed work than the other. Names chosen so that their hash modulo 12 cycles through
0..11 split exactly for every worker count that divides 12. tests/test_sharding.py checks the
split on real Bytewax workers, so a Bytewax change to its routing shows up as a failing test.
"""

from __future__ import annotations

import itertools
import os
import zlib
from collections.abc import Mapping

DEFAULT_SHARDS = 24
"""Twice 12, so shards split exactly over 2, 3, 4, 6 or 12 workers; few enough that a source batch
becomes two dozen Bytewax items rather than a thousand. Each item costs Bytewax's keyed step a
Python call and its bookkeeping: with 64, top_customer_artists ran 3.6% more instructions per record.
"""


def configured_shards(env: Mapping[str, str] = os.environ) -> int:
    """`UTOPIA_SHARDS` (docs/outputs.md#shards), read when the module loads, before any setting is checked.

    A value that is not a positive whole number gives the default here; `Settings.from_env`, which
    every run calls before it starts, then stops the run with a one-line message.
    """
    value = env.get("UTOPIA_SHARDS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_SHARDS


SHARDS = configured_shards()
"""Keys are grouped into this many shards; a shard is the unit Bytewax routes to a worker, so at
most this many workers share a keyed step. Every process of a run must have the same number, and a
recovery store holds states by shard: it resumes only with the number it was written with."""

_CYCLE = 12
_MASK = (1 << 64) - 1


def _rotl(x: int, bits: int) -> int:
    return ((x << bits) | (x >> (64 - bits))) & _MASK


def siphash13(data: bytes) -> int:
    """SipHash-1-3 with the zero key: Rust's `DefaultHasher::new()`."""
    v0, v1, v2, v3 = 0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573

    def sip_round() -> None:
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & _MASK
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _MASK
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _MASK
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _MASK
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)

    whole = len(data) - len(data) % 8
    for start in range(0, whole, 8):
        word = int.from_bytes(data[start : start + 8], "little")
        v3 ^= word
        sip_round()
        v0 ^= word
    last = ((len(data) & 0xFF) << 56) | int.from_bytes(data[whole:], "little")
    v3 ^= last
    sip_round()
    v0 ^= last
    v2 ^= 0xFF
    for _ in range(3):
        sip_round()
    return v0 ^ v1 ^ v2 ^ v3


def bytewax_route(key: str) -> int:
    """The number whose remainder by the worker count is the worker Bytewax sends `key` to.

    A Rust `String` hashes as its bytes followed by 0xFF.
    """
    return siphash13(key.encode() + b"\xff")


def balanced_names(count: int) -> list[str]:
    """`count` distinct names; the i-th one routes to `i % 12` modulo 12."""
    candidates = (str(n) for n in itertools.count())
    return [next(c for c in candidates if bytewax_route(c) % _CYCLE == i % _CYCLE) for i in range(count)]


SHARD_NAMES = balanced_names(SHARDS)


def shard_of(key: str) -> int:
    """The shard a key's records go to in a keyed step: crc32, the same in every process (`hash` is salted)."""
    return zlib.crc32(key.encode()) % SHARDS


SHARD_KEYS = [
    next(f"shard-{n}-{m}" for m in itertools.count() if shard_of(f"shard-{n}-{m}") == n) for n in range(SHARDS)
]
"""A key in each shard: for a state that serves a whole shard, such as an index of the shard's customers."""


def shard_key(key: str) -> str:
    """The key of the state that serves `key`'s whole shard."""
    return SHARD_KEYS[shard_of(key)]


def worker_of(key: str, workers: int) -> int:
    """The worker Bytewax sends `key` to, of `workers` in all."""
    return bytewax_route(key) % workers


def bundle_names(workers: int) -> list[str]:
    """For each of `workers` workers, a key Bytewax sends to it: the key of its bundles (utopia.steps)."""
    names: dict[int, str] = {}
    candidates = (f"bundle-{n}" for n in itertools.count())
    while len(names) < workers:
        name = next(candidates)
        names.setdefault(worker_of(name, workers), name)
    return [names[w] for w in range(workers)]
