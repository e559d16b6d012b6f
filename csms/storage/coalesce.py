"""Coalescing of concurrent one-row requests into one bulk call (one bridge crossing, one pooled connection).

A reconnect storm is thousands of handshakes at once, each wanting one row (its credentials, its fence). Done one
by one they queue for the small pool behind the trio-asyncio bridge; done as one ``= ANY($1)`` or ``unnest``
statement per batch the same work costs a handful of round trips. Each request still gets its own exact answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import trio

R = TypeVar("R")
T = TypeVar("T")


@dataclass(eq=False)
class _Entry(Generic[R, T]):
    request: R
    done: trio.Event = field(default_factory=trio.Event)
    abandoned: bool = False
    result: T | None = None
    error: BaseException | None = None


class CoalescerClosed(Exception):
    """The coalescer stopped before this request was answered."""


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
        self._key = key
        self._max_batch = max(1, max_batch)
        parallel = max(1, parallel)
        self._slots = trio.Semaphore(parallel)
        self._room = trio.CapacityLimiter(max(1, max_queued or self._max_batch * (parallel + 1)))
        self._pending: list[_Entry[R, T]] = []
        self._ready = trio.Event()
        self._running = False
        self._scope: trio.CancelScope | None = None

    @property
    def queued(self) -> int:
        """Requests queued or in flight."""
        return self._room.borrowed_tokens

    async def submit(self, request: R) -> T:
        async with self._room:
            return await self._submit(request)

    async def _submit(self, request: R) -> T:
        if not self._running:
            return (await self._bulk([request]))[0]
        entry: _Entry[R, T] = _Entry(request)
        self._pending.append(entry)
        self._ready.set()
        try:
            await entry.done.wait()
        except BaseException:
            entry.abandoned = True  # still queued: dropped; already sent: answered into the void
            raise
        if entry.error is not None:
            raise entry.error
        return entry.result  # type: ignore[return-value]  # set whenever error is None

    def close(self) -> None:
        """Stop batching; queued requests fail with CoalescerClosed, new ones go straight to ``bulk``."""
        self._running = False
        if self._scope is not None:
            self._scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as self._scope:
            self._running = True
            try:
                async with trio.open_nursery() as nursery:
                    task_status.started()
                    while True:
                        await self._ready.wait()
                        await self._slots.acquire()
                        batch = self._take()
                        if not batch:
                            self._slots.release()
                            self._ready = trio.Event()
                            continue
                        nursery.start_soon(self._send, batch)
            finally:
                self._running = False
                for entry in self._pending:
                    entry.error = CoalescerClosed("stopped before the request was sent")
                    entry.done.set()
                self._pending = []

    def _take(self) -> list[_Entry[R, T]]:
        batch: list[_Entry[R, T]] = []
        keys: set[Hashable] = set()
        rest: list[_Entry[R, T]] = []
        for entry in self._pending:
            if entry.abandoned:
                continue
            key = self._key(entry.request)
            if len(batch) < self._max_batch and key not in keys:
                keys.add(key)
                batch.append(entry)
            else:
                rest.append(entry)
        self._pending = rest
        if not rest:
            self._ready = trio.Event()
        return batch

    async def _send(self, batch: list[_Entry[R, T]]) -> None:
        try:
            try:
                results = await self._bulk([entry.request for entry in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"bulk call answered {len(results)} of {len(batch)} requests")
            except Exception as exc:
                for entry in batch:
                    entry.error = exc
                    entry.done.set()
                return
            for entry, result in zip(batch, results, strict=True):
                entry.result = result
                entry.done.set()
        finally:
            self._slots.release()
            if not batch[0].done.is_set():  # cancelled mid-call (closing): nobody will answer these
                for entry in batch:
                    entry.error = CoalescerClosed("stopped while the request was in flight")
                    entry.done.set()
