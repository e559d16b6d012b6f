"""Cluster-wide aggregates (stations owned per replica, connections per minute, fleet counts) kept briefly.

They read the whole owner map in etcd or an hour of connection history, so each open console re-reading them on
every live update (presence changes arrive many times a second during a rolling update) would make the console the
biggest client of etcd and Postgres. Each replica computes one at most once per `seconds`, however many consoles
ask: concurrent askers wait for the one computation. Failures are not kept, so the next ask tries again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import trio

T = TypeVar("T")

AGGREGATE_SECONDS = 1.5  # with the live hub's 0.25 s gathering, a change still shows within the 2 s live bar
MAX_KEYS = 64


class BriefCache:
    def __init__(self, seconds: float = AGGREGATE_SECONDS) -> None:
        self.seconds = seconds
        self._values: dict[Hashable, tuple[float, Any]] = {}
        self._locks: dict[Hashable, trio.Lock] = {}

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The value computed less than `seconds` ago, else a fresh one (one computation per key at a time)."""
        found = self._fresh(key)
        if found is not None:
            return found[0]
        if key not in self._locks and len(self._locks) >= MAX_KEYS:  # keys are few (live replica sets); bound anyway
            self._locks.clear()
            self._values.clear()
        async with self._locks.setdefault(key, trio.Lock()):
            found = self._fresh(key)
            if found is not None:
                return found[0]
            value = await compute()
            self._values[key] = (trio.current_time() + self.seconds, value)
            return value

    def _fresh(self, key: Hashable) -> tuple[Any] | None:
        entry = self._values.get(key)
        if entry is not None and entry[0] > trio.current_time():
            return (entry[1],)
        return None
