"""Garbage-collector settings for a long-running replica with many connections."""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Callable

import trio

log = logging.getLogger(__name__)

GC_YOUNG_THRESHOLD = 50_000
_CONNECTION_SLACK = 100  # connections that count as none when scaling the memory a reclaim waits for


def tune_garbage_collector() -> None:
    """Keep CPython's cyclic GC from rescanning every connection's objects over and over.

    With the default thresholds (a young collection every 700 allocations) the objects of a message that lives
    a few milliseconds survive into the old generation, and the frequent full collections that follow walk
    every object of every connected station: 39 % of the replica's CPU while 8,000 stations connected
    (py-spy --native, benchmarks/profile_replica.py). Young collections every 50,000 allocations let most
    of those objects die young, and freezing what start-up built (schemas, modules) takes it out of every
    full collection. Only cyclic garbage waits longer for the collector; reference counting frees the rest.
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, GC_YOUNG_THRESHOLD), middle, old)


class ConnectionFreezer:
    """Keeps the collector's young generation to one period's objects, and reclaims frozen garbage after churn.

    CPython 3.11 lowers the young count whenever *any* tracked object dies. An idle connection's task holds the
    await chain of its current receive (coroutines, frames, cancel scopes), rebuilt by every message and kept
    until the next one: each message frees an old chain and keeps a new one, so the count barely moves while
    the young list grows by every live chain. At 19,000 stations the young collection that finally came walked
    over a million objects: 0.4-1.1 s stalls every 10-30 s (benchmarks/results/SUMMARY.md). So every `period`
    gc.freeze (a list splice, no walk) moves the young objects out of every later collection; reference
    counting still frees them when their connection moves on. Not a young collection first: logged at 3,000
    and 19,000 stations, those found no cyclic garbage at all, and once the replica fell behind each walked the
    in-flight calls' 120-170k objects (0.13-0.17 s every second), which kept it behind.

    Frozen objects that later become cyclic garbage (a closed connection's task and frame cycles) wait until
    unfrozen: once `reclaim_fraction` of the frozen connections have closed, or allocated memory blocks grew by
    `reclaim_growth` since the last reclaim beyond what new connections explain, with no connect burst under
    way, one full collection reclaims them and freezes the rest. (Blocks, not gc.get_freeze_count(): that walks
    the frozen list, millions of objects.)
    """

    def __init__(
        self,
        connections: Callable[[], int],
        closed: Callable[[], int],
        *,
        period: float = 1.0,
        settle_periods: int = 5,
        min_growth: int = 100,
        reclaim_fraction: float = 0.5,
        min_reclaim: int = 1000,
        reclaim_growth: float = 1.0,
    ) -> None:
        self._connections = connections
        self._closed = closed
        self._period = period
        self._settle_periods = settle_periods
        self._min_growth = min_growth
        self._reclaim_fraction = reclaim_fraction
        self._min_reclaim = min_reclaim
        self._reclaim_growth = reclaim_growth
        self._frozen_connections = 0
        self._closed_at_reclaim = 0
        self._blocks_at_reclaim = sys.getallocatedblocks()
        self._connections_at_reclaim = 0
        self._recent: list[int] = []

    async def run(self) -> None:
        while True:
            await trio.sleep(self._period)
            self.step()

    def step(self) -> None:
        """One period: reclaim if churn or growth calls for it, else freeze the period's objects (no walk)."""
        now_open, closed = self._connections(), self._closed() - self._closed_at_reclaim
        self._recent = [*self._recent[-self._settle_periods :], now_open]
        settled = now_open - self._recent[0] < self._min_growth
        churned = closed >= max(self._min_reclaim, self._reclaim_fraction * self._frozen_connections)
        # Memory grown beyond what the new connections explain (a ramp to 19,000 stations is no reason to walk
        # them all: that full collection took 4.9 s).
        explained = (now_open + _CONNECTION_SLACK) / (self._connections_at_reclaim + _CONNECTION_SLACK)
        grown = sys.getallocatedblocks() > (1 + self._reclaim_growth) * self._blocks_at_reclaim * max(1.0, explained)
        if churned or (grown and settled):
            started = time.perf_counter()
            gc.unfreeze()
            collected = gc.collect()
            gc.freeze()
            self._frozen_connections, self._closed_at_reclaim = now_open, self._closed()
            self._blocks_at_reclaim = sys.getallocatedblocks()
            self._connections_at_reclaim = now_open
            log.info(
                "frozen garbage reclaimed",
                extra={
                    "closed": closed,
                    "objects": collected,
                    "blocks": self._blocks_at_reclaim,
                    "seconds": round(time.perf_counter() - started, 3),
                },
            )
        else:
            gc.freeze()  # no collection first: they found no cyclic garbage, and walked the in-flight calls
            self._frozen_connections = max(self._frozen_connections, now_open)
