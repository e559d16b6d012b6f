"""Callback lists and a waitable boolean, shared by both coordinator implementations."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

import trio

log = logging.getLogger(__name__)

T = TypeVar("T")


class Hooks(Generic[T]):
    """Registered callbacks; one failing callback is logged and never breaks the coordinator."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[T], None]] = []

    def add(self, cb: Callable[[T], None]) -> None:
        self._callbacks.append(cb)

    def fire(self, arg: T) -> None:
        for cb in list(self._callbacks):
            try:
                cb(arg)
            except Exception:
                log.exception("cluster callback %r failed", cb)


class Flag:
    """A boolean that tasks can wait on becoming True or False."""

    def __init__(self, value: bool = False) -> None:
        self._value = value
        self._changed = trio.Event()

    @property
    def value(self) -> bool:
        return self._value

    def set(self, value: bool) -> bool:
        """Returns True if the value changed."""
        if value == self._value:
            return False
        self._value = value
        self._changed.set()
        self._changed = trio.Event()
        return True

    async def wait_for(self, value: bool) -> None:
        while self._value != value:
            await self._changed.wait()
