"""A cap on handshakes being checked at once (credentials, password, claim, fence), before the upgrade.

A reconnect storm is thousands of handshakes arriving together; unbounded, each holds a socket, a task and a
place in the credential and claim queues while the replica falls ever further behind. Over the cap a
handshake waits briefly for a slot, then is told to come back (503 + Retry-After): the balancer or the
station's own back-off spreads the storm instead of the replica queueing it without limit.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from csms.stations.handshake import Refusal

SLOT_WAIT_SECONDS = 2.0  # a handshake waits this long for a slot at most
_RETRY_AFTER = (1, 5)  # seconds, spread so refused stations do not all come back together


class HandshakeSlots:
    """At most ``limit`` handshakes checked at once; as many more wait up to SLOT_WAIT_SECONDS; the rest are
    refused at once."""

    def __init__(self, limit: int, wait: float = SLOT_WAIT_SECONDS) -> None:
        self._slots = trio.Semaphore(limit)
        self._wait = wait
        self._max_waiting = limit
        self._waiting = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the block; Refusal(503) if none frees up in time (or too many wait already)."""
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            await self._wait_for_slot()
        try:
            yield
        finally:
            self._slots.release()

    async def _wait_for_slot(self) -> None:
        if self._waiting >= self._max_waiting:
            raise _busy()
        self._waiting += 1
        try:
            with trio.move_on_after(self._wait) as waited:
                await self._slots.acquire()  # either acquires or is cancelled, never both
        finally:
            self._waiting -= 1
        if waited.cancelled_caught:
            raise _busy()


def _busy() -> Refusal:
    retry_after = str(random.randint(*_RETRY_AFTER))
    return Refusal(503, "too many stations connecting at once; retry", (("Retry-After", retry_after),))
