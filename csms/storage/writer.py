"""trio side of the group-commit writer: gather writes from many tasks, one asyncio crossing per batch.

Per-message inserts cost a trio<->asyncio crossing plus a commit each (~1k rows/s); a batch pays both once.
A caller is released only after its batch's COMMIT, so an acknowledged station message is durable.
The queueing, lingering and per-caller answers are ``microbatch.MicroBatcher``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import outcome
import trio

from csms.storage.batch import BatchRunner, PendingWrite
from csms.storage.bridge import AsyncioBridge
from csms.storage.errors import DatabaseUnavailable, StorageError
from microbatch import Answer, BatcherClosed, MicroBatcher


class GroupCommitWriter:
    """Bounded queue of pending writes sent by up to ``workers`` batches in flight (one transaction each)."""

    def __init__(
        self,
        bridge: AsyncioBridge,
        runner: BatchRunner,
        *,
        max_batch: int,
        max_wait: float,
        queue_size: int,
        batch_timeout: float,
        workers: int = 1,
    ) -> None:
        if max_batch < 1 or queue_size < 1 or workers < 1 or max_wait < 0:
            raise ValueError("max_batch, queue_size and workers must be >= 1 and max_wait >= 0")
        self._bridge = bridge
        self._runner = runner
        self._batch_timeout = batch_timeout
        self._batcher: MicroBatcher[PendingWrite, Any] = MicroBatcher(
            self._commit,
            max_batch=max_batch,
            max_queued=queue_size + workers * max_batch,  # queue_size waiting, plus a batch per worker
            parallel=workers,
            linger=max_wait,
            stopped=self._stopped,
        )

    async def submit(self, pending: PendingWrite) -> Any:
        """Queue a write (waiting while the queue is full) and return its result once committed."""
        try:
            return await self._batcher.submit(pending)
        except BatcherClosed:
            raise DatabaseUnavailable("database is closed") from None
        except trio.Cancelled:
            # Not yet started: the writer skips it. Already running: it may still commit (outcome unknown).
            pending.abandoned = True
            raise

    def close(self) -> None:
        """Refuse new writes; queued ones are still committed before ``run`` returns."""
        self._batcher.close()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self._batcher.run(task_status=task_status)

    async def _commit(self, batch: list[PendingWrite]) -> list[Answer[Any]]:
        live = [p for p in batch if not p.abandoned]
        try:
            if live:
                with trio.move_on_after(self._batch_timeout):
                    await self._bridge.run(self._runner.run, live)
            limit = self._batch_timeout
            return [
                self._result(p, lambda: DatabaseUnavailable(f"no answer within {limit}s; outcome unknown"))
                for p in batch
            ]
        except Exception as exc:  # a bug in the runner must not kill the writer or strand callers
            failure = repr(exc)
            return [self._result(p, lambda: StorageError(f"write batch failed: {failure}")) for p in batch]

    def _stopped(self, pending: PendingWrite, sent: bool) -> outcome.Outcome[Any]:
        """Shutdown: what committed keeps its result; the rest never ran (queued) or has an unknown outcome."""
        if not sent:
            return outcome.Error(DatabaseUnavailable("database closed before the write ran"))
        return self._result(pending, lambda: DatabaseUnavailable("database closed mid-write; outcome unknown"))

    @staticmethod
    def _result(pending: PendingWrite, make_error: Callable[[], BaseException]) -> outcome.Outcome[Any]:
        """The write's own outcome, or a fresh error (tracebacks are per raise) if it was never settled."""
        if pending.result is None:
            pending.fail(make_error())
        assert pending.result is not None
        return pending.result
