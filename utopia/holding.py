"""Holding records that arrive before the record they need (SPEC 1 and 4.1)."""

from __future__ import annotations

from typing import Generic, TypeVar

R = TypeVar("R")


class HeldUntilKnown(Generic[R]):
    """Records waiting for a reference to become known; released once, in their input order.

    Topics are not ordered relative to each other, so a ticket may come before its event. It is
    never dropped for that: it waits here and is applied right after the record that completes it.
    """

    __slots__ = ("waiting",)

    def __init__(self) -> None:
        self.waiting: list[R] = []

    def hold(self, record: R) -> None:
        self.waiting.append(record)

    def release(self) -> list[R]:
        released, self.waiting = self.waiting, []
        return released

    def __len__(self) -> int:
        return len(self.waiting)
