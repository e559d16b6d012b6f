"""asyncio side of the group-commit writer: run a batch of write ops in one transaction.

A failing op must not sink its neighbours: the batch is rolled back, the failing op's caller gets the error,
and the rest run again as a (smaller) batch. This costs one extra transaction per bad op, where re-running
every op in its own transaction would cost one commit (an fsync) per op. When the culprit is unknown
(COMMIT itself failed, a deadlock or serialization failure) or a batch keeps failing, each op runs alone.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import outcome
import trio

from csms.storage.bridge import is_transient, is_unavailable, pooled_connection, translate
from csms.storage.errors import FenceRejected
from csms.storage.fencing import lock_current_fences
from csms.storage.observer import StorageObserver
from csms.storage.types import Fence, WriteOp


@dataclass(eq=False, slots=True)
class PendingWrite:
    """One caller's write waiting for its batch. ``result`` is set on the asyncio side, ``done`` on trio's."""

    op: WriteOp[Any]
    fence: Fence | None
    done: trio.Event = field(default_factory=trio.Event)
    result: outcome.Outcome[Any] | None = None
    abandoned: bool = False  # the caller was cancelled before the op ran: skip it

    @property
    def settled(self) -> bool:
        return self.result is not None

    def succeed(self, value: Any) -> None:
        if self.result is None:
            self.result = outcome.Value(value)

    def fail(self, error: BaseException) -> bool:
        if self.result is None:
            self.result = outcome.Error(error)
            return True
        return False


class BatchRunner:
    """Runs batches on the writer's pool (asyncio-flavoured; called through the bridge)."""

    def __init__(
        self, pool: asyncpg.Pool, observer: StorageObserver, *, max_rounds: int = 4, solo_attempts: int = 3
    ) -> None:
        self._pool = pool
        self._observer = observer
        self._max_rounds = max_rounds
        self._solo_attempts = solo_attempts

    async def run(self, items: list[PendingWrite]) -> None:
        """Settle every item: committed value, its own error, FenceRejected or DatabaseUnavailable."""
        pending = [p for p in items if not p.abandoned]
        for _ in range(self._max_rounds):
            if not pending:
                return
            pending, solo = await self._attempt(pending)
            if solo:
                break
        for p in pending:
            await self.run_alone(p)

    async def run_alone(self, p: PendingWrite) -> None:
        """One op in its own transaction (group commit off, or batch fallback); retries transient errors."""
        for attempt in range(self._solo_attempts):
            if p.settled or p.abandoned:
                return
            started = time.perf_counter()
            try:
                async with pooled_connection(self._pool) as conn, conn.transaction():
                    if not await self._check_fences(conn, [p]):
                        return
                    value = await p.op(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc) and attempt + 1 < self._solo_attempts:
                    continue
                self._fail(p, exc)
                return
            p.succeed(value)
            self._observer.batch_committed(1, time.perf_counter() - started)
            return

    async def _attempt(self, items: list[PendingWrite]) -> tuple[list[PendingWrite], bool]:
        """One transaction over ``items``. Returns (items to run again, whether to run them alone)."""
        started = time.perf_counter()
        live: list[PendingWrite] = []
        results: list[Any] = []
        culprit: tuple[PendingWrite, Exception] | None = None
        try:
            async with pooled_connection(self._pool) as conn, conn.transaction():
                live = await self._check_fences(conn, items)
                for p in live:
                    try:
                        results.append(await p.op(conn))
                    except Exception as exc:
                        culprit = (p, exc)
                        raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if culprit is not None and not (is_unavailable(culprit[1]) or is_transient(culprit[1])):
                bad, error = culprit
                self._fail(bad, error)
                rest = [p for p in live if p is not bad and not p.abandoned]
                if rest:
                    self._observer.batch_retried(len(rest), "op failed")
                return rest, False
            if is_unavailable(exc):
                for p in items:
                    self._fail(p, exc)
                return [], False
            rest = [p for p in items if not p.settled]
            self._observer.batch_retried(len(rest), type(exc).__name__)
            return rest, True
        for p, value in zip(live, results, strict=True):
            p.succeed(value)
        self._observer.batch_committed(len(live), time.perf_counter() - started)
        return [], False

    async def _check_fences(self, conn: asyncpg.Connection, items: list[PendingWrite]) -> list[PendingWrite]:
        """Reject items whose fence is stale (settling them) and return the ones to run."""
        fenced = [p.fence.station_id for p in items if p.fence is not None]
        current = await lock_current_fences(conn, fenced) if fenced else {}
        live = []
        for p in items:
            if p.settled:
                continue
            fence = p.fence
            if fence is not None and current.get(fence.station_id) != fence.token:
                p.fail(FenceRejected(fence.station_id, fence.token, current.get(fence.station_id)))
                self._observer.fence_rejected(fence.station_id)
                continue
            live.append(p)
        return live

    def _fail(self, p: PendingWrite, exc: BaseException) -> None:
        error = translate(exc)
        if p.fail(error):
            self._observer.write_failed(error)
