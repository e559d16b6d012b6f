"""Garbage-collector settings for a long-running replica with many connections."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

import trio

log = logging.getLogger(__name__)

GC_YOUNG_THRESHOLD = 50_000


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
    """Moves settled connections' objects out of the collector's reach, and takes them back after churn.

    A full collection walks every tracked object: with 15,000 connections that is millions of objects and a
    whole-replica stall of a second or more, every time the old generation grew by a quarter (connect bursts,
    caches). Connections live for hours, so once a burst has settled (fewer than `min_growth` new connections
    in the last period) their objects are frozen (one young collection, then gc.freeze: a list splice, no
    walk) and full collections only see what came since. (Freezing every period during a burst cost a young
    collection of up to ~0.3 s each time, py-spy, for objects the burst's end freezes anyway.) Frozen objects
    that later become cyclic garbage (a closed connection's task and frame cycles) are not collected until
    unfrozen: once `reclaim_fraction` of the frozen connections have closed, one full collection reclaims them
    and freezes the survivors.
    """

    def __init__(
        self,
        connections: Callable[[], int],
        closed: Callable[[], int],
        *,
        period: float = 5.0,
        min_growth: int = 100,
        reclaim_fraction: float = 0.5,
        min_reclaim: int = 1000,
    ) -> None:
        self._connections = connections
        self._closed = closed
        self._period = period
        self._min_growth = min_growth
        self._reclaim_fraction = reclaim_fraction
        self._min_reclaim = min_reclaim
        self._frozen_connections = 0
        self._closed_at_reclaim = 0
        self._last_seen = 0

    async def run(self) -> None:
        while True:
            await trio.sleep(self._period)
            self.step()

    def step(self) -> None:
        """One look: reclaim after heavy churn, else freeze if connections grew since the last freeze and the
        burst has settled."""
        now_open, closed = self._connections(), self._closed() - self._closed_at_reclaim
        settled = now_open - self._last_seen < self._min_growth
        self._last_seen = now_open
        if closed >= max(self._min_reclaim, self._reclaim_fraction * self._frozen_connections):
            started = time.perf_counter()
            gc.unfreeze()
            collected = gc.collect()
            gc.freeze()
            self._frozen_connections, self._closed_at_reclaim = now_open, self._closed()
            log.info(
                "garbage of closed connections reclaimed",
                extra={"closed": closed, "objects": collected, "seconds": round(time.perf_counter() - started, 3)},
            )
        elif settled and now_open >= self._frozen_connections + self._min_growth:
            gc.collect(1)  # the young garbage must not be frozen with the connections
            gc.freeze()
            self._frozen_connections = now_open
