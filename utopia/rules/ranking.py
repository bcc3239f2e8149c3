"""Ranking by count (docs/outputs.md#ranking): higher count first; on equal counts, whoever reached it first."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class TopN(Generic[T]):
    """Counts items one occurrence at a time and keeps the `n` best ranked, in O(n) per occurrence.

    (Or takes counts made elsewhere, with the input position each was reached at: `raise_to`.)

    Counts only ever grow by one, so an item outside the top can only enter by passing the last
    one, and an item inside can only move up past items with a lower count: an item that already
    had the same count got there first and stays ahead. No sorting of all the counts is needed.
    """

    __slots__ = ("n", "counts", "top", "reached")

    def __init__(self, n: int = 3):
        self.n = n
        self.counts: dict[T, int] = {}
        self.top: list[T] = []
        self.reached: dict[T, int] | None = None  # only for `raise_to`

    def add(self, item: T) -> bool:
        """Count one occurrence of `item`; True if the top (members, order or their counts) changed."""
        counts, top = self.counts, self.top
        count = counts[item] = counts.get(item, 0) + 1
        if item in top:
            place = top.index(item)
        elif len(top) < self.n:
            top.append(item)
            place = len(top) - 1
        elif count > counts[top[-1]]:
            top[-1] = item
            place = len(top) - 1
        else:
            return False
        while place > 0 and counts[top[place - 1]] < count:
            top[place - 1], top[place] = top[place], top[place - 1]
            place -= 1
        return True

    def raise_to(self, item: T, count: int, reached: int) -> bool:
        """Set `item`'s count, reached at input position `reached`; True if the top changed.

        For counts kept elsewhere and sent here now and then (several streams of an artist at once,
        from workers that do not wait for each other): the position says who got there first, not
        the order of the calls. A count only ever grows.
        """
        counts, top = self.counts, self.top
        reached_at = self.reached if self.reached is not None else self._reached()
        counts[item], reached_at[item] = count, reached
        if item not in top:
            if len(top) == self.n:
                last = top[-1]
                if (count, -reached) <= (counts[last], -reached_at[last]):
                    return False
                top.pop()
            top.append(item)
        top.sort(key=lambda member: (-counts[member], reached_at[member]))
        return True

    def _reached(self) -> dict[T, int]:
        self.reached = {}
        return self.reached

    def ranked(self) -> list[tuple[T, int]]:
        """The top items with their counts, best first."""
        return [(item, self.counts[item]) for item in self.top]

    def count(self, item: T) -> int:
        return self.counts.get(item, 0)
