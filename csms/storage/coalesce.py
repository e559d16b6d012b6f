"""Coalescing of concurrent one-row requests into one bulk call (one bridge crossing, one pooled connection).

A reconnect storm is thousands of handshakes at once, each wanting one row (its credentials, its fence). Done one
by one they queue for the small pool behind the trio-asyncio bridge; done as one ``= ANY($1)`` or ``unnest``
statement per batch the same work costs a handful of round trips. Each request still gets its own exact answer.
The batching itself is ``microbatch.MicroBatcher``; this adds the bulk-call shape and the unbatched fallback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import outcome
import trio

from microbatch import Answer, BatcherClosed, MicroBatcher

R = TypeVar("R")
T = TypeVar("T")

CoalescerClosed = BatcherClosed  # the coalescer stopped before this request was answered


class Coalescer(Generic[R, T]):
    """Answers ``submit(request)`` calls through ``bulk(requests) -> results`` (same length, same order).

    Requests that arrive while a bulk call is in flight wait for the next one, so batches grow with the load
    and a lone request costs what it did before. At most one request per ``key`` goes in a batch (a later one
    waits for the next), so a bulk statement never sees the same row twice. At most ``max_queued`` requests
    are queued or in flight (default: enough to keep every parallel slot busy with a full batch and one more
    batch ready); more wait for room, as long as their caller's deadline allows. Run with
    ``await nursery.start(coalescer.run)``; before that (or after ``close()``), ``submit`` calls ``bulk`` directly.
    """

    def __init__(
        self,
        bulk: Callable[[list[R]], Awaitable[list[T]]],
        *,
        key: Callable[[R], Hashable],
        max_batch: int = 100,
        parallel: int = 2,
        max_queued: int | None = None,
    ) -> None:
        self._bulk = bulk
        max_batch, parallel = max(1, max_batch), max(1, parallel)
        self._batcher: MicroBatcher[R, T] = MicroBatcher(
            self._send,
            max_batch=max_batch,
            max_queued=max(1, max_queued or max_batch * (parallel + 1)),
            parallel=parallel,
            key=key,
        )

    @property
    def queued(self) -> int:
        """Requests queued or in flight."""
        return self._batcher.queued

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self._batcher.run(task_status=task_status)

    def close(self) -> None:
        """Stop batching; queued requests fail with CoalescerClosed, new ones go straight to ``bulk``."""
        self._batcher.abort()

    async def submit(self, request: R) -> T:
        if self._batcher.running:
            return await self._batcher.submit(request)
        return (await self._bulk([request]))[0]

    async def _send(self, requests: list[R]) -> list[Answer[T]]:
        return [outcome.Value(result) for result in await self._bulk(requests)]
