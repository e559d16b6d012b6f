"""trio side of the group-commit writer: gather writes from many tasks, one asyncio crossing per batch.

Per-message inserts cost a trio<->asyncio crossing plus a commit each (~1k rows/s); a batch pays both once.
A caller is released only after its batch's COMMIT, so an acknowledged station message is durable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from csms.storage.batch import BatchRunner, PendingWrite
from csms.storage.bridge import AsyncioBridge
from csms.storage.errors import DatabaseUnavailable, StorageError


class GroupCommitWriter:
    """Bounded queue of pending writes drained by ``workers`` writer tasks (each one batch at a time)."""

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
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._batch_timeout = batch_timeout
        self._workers = workers
        self._send, self._receive = trio.open_memory_channel[PendingWrite](queue_size)

    async def submit(self, pending: PendingWrite) -> Any:
        """Queue a write (waiting while the queue is full) and return its result once committed."""
        try:
            await self._send.send(pending)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise DatabaseUnavailable("database is closed") from None
        try:
            await pending.done.wait()
        except trio.Cancelled:
            # Not yet started: the writer skips it. Already running: it may still commit (outcome unknown).
            pending.abandoned = True
            raise
        assert pending.result is not None
        return pending.result.unwrap()

    def close(self) -> None:
        """Refuse new writes; queued ones are still committed before the workers exit."""
        self._send.close()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(self._workers):
                nursery.start_soon(self._worker, self._receive.clone())
            await self._receive.aclose()
            task_status.started()

    async def _worker(self, receive: trio.MemoryReceiveChannel[PendingWrite]) -> None:
        async with receive:
            try:
                while batch := await self._collect(receive):
                    await self._commit(batch)
            finally:
                # Cancelled (shutdown): nobody will run what is still queued, so release those callers now.
                self._release(self._drain(receive), lambda: DatabaseUnavailable("database closed before the write ran"))

    async def _collect(self, receive: trio.MemoryReceiveChannel[PendingWrite]) -> list[PendingWrite]:
        """Wait for one write, then take what is queued or arrives within ``max_wait``, up to a batch."""
        try:
            batch = [await receive.receive()]
        except trio.EndOfChannel:
            return []
        deadline = trio.current_time() + self._max_wait
        while len(batch) < self._max_batch:
            try:
                batch.append(receive.receive_nowait())
                continue
            except trio.WouldBlock:
                pass
            except trio.EndOfChannel:
                break
            if trio.current_time() >= deadline:
                break
            with trio.move_on_at(deadline):
                try:
                    batch.append(await receive.receive())
                except trio.EndOfChannel:
                    break
        return batch

    async def _commit(self, batch: list[PendingWrite]) -> None:
        try:
            live = [p for p in batch if not p.abandoned]
            if not live:
                return
            with trio.move_on_after(self._batch_timeout):
                await self._bridge.run(self._runner.run, live)
            limit = self._batch_timeout
            self._release(batch, lambda: DatabaseUnavailable(f"no answer within {limit}s; outcome unknown"))
        except Exception as exc:  # a bug in the runner must not kill the writer or strand callers
            failure = repr(exc)
            self._release(batch, lambda: StorageError(f"write batch failed: {failure}"))
        finally:
            self._release(batch, lambda: DatabaseUnavailable("database closed mid-write; outcome unknown"))

    @staticmethod
    def _drain(receive: trio.MemoryReceiveChannel[PendingWrite]) -> list[PendingWrite]:
        left: list[PendingWrite] = []
        while True:
            try:
                left.append(receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return left

    @staticmethod
    def _release(items: list[PendingWrite], make_error: Callable[[], BaseException]) -> None:
        """Settle still-unsettled items (a fresh error each: tracebacks are per raise); wake all."""
        for p in items:
            if not p.settled:
                p.fail(make_error())
            p.done.set()
