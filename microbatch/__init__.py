"""Micro-batching: many tasks submit one item each and wait; a runner sends the items in batches and answers each.

One mechanism behind three users (the storage coalescers, the etcd claim batcher, the group-commit writer),
because a reconnect storm or a write burst costs a round trip per *batch* instead of one per item. Precisely:

- Admission: at most ``max_queued`` items are queued or in flight; ``submit`` waits for room beyond that
  (back-pressure that the caller's deadline can cut short) instead of growing a list every batch scans.
- Batches: the runner takes queued items in arrival order, up to ``max_batch``, at most one per ``key`` (a later
  item with the same key waits for a later batch), skipping items whose caller gave up while still queued.
- Linger: with ``linger > 0`` a batch that takes the last free parallel slot waits up to that long after its
  first item for more, until it is full. While other slots are free it goes at once: lingering then only adds
  latency (the group-commit writer's p99 at 19,000 realistic stations, see docs/targets.md), whereas with
  every slot busy the next chance to send is far off and a fuller batch is worth the wait.
- Parallelism: at most ``parallel`` batches are in flight; items arriving meanwhile form the next batch, so
  batches grow with the load and a lone item costs what it would alone.
- Answers: ``send(items)`` returns one answer per item, in order: an ``outcome.Value``/``outcome.Error`` settles
  that item's ``submit``; ``RETRY`` puts it back at the head of the queue (it keeps its place and its room).
  If ``send`` raises (or answers the wrong number of items), every item of the batch gets that error.
- Closing: ``close()`` refuses new items (``BatcherClosed``); queued ones are still sent, then ``run`` returns.
  ``abort()`` or cancelling ``run`` also refuses new items and settles every unanswered one with
  ``stopped(item, sent)`` (``sent``: it was in a batch in flight, so its effect is unknown).
- A caller cancelled while waiting: its item is dropped if still queued; if already sent its answer is dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

import outcome
import trio

I = TypeVar("I")  # noqa: E741  (item)
T = TypeVar("T")


class BatcherClosed(Exception):
    """The batcher was closed or stopped before this item was answered."""


class Retry:
    """The type of ``RETRY``: send this item again in a later batch."""


RETRY: Final = Retry()

Answer = outcome.Outcome[T] | Retry


@dataclass(eq=False, slots=True)
class _Slot(Generic[I, T]):
    item: I
    done: trio.Event = field(default_factory=trio.Event)
    answer: outcome.Outcome[T] | None = None
    abandoned: bool = False

    def settle(self, answer: outcome.Outcome[T]) -> None:
        if self.answer is None:
            self.answer = answer
            self.done.set()


async def _acquire(tokens: trio.CapacityLimiter) -> None:
    """Take a token without a trip through the scheduler when one is free (trio's ``acquire`` yields even
    then): under load every such trip waits a whole scheduling batch, and a write already pays several."""
    try:
        tokens.acquire_nowait()
    except trio.WouldBlock:
        await tokens.acquire()


def _closed(item: object, sent: bool) -> outcome.Outcome[object]:
    return outcome.Error(BatcherClosed("stopped while the item was in flight" if sent else "stopped before sending"))


class MicroBatcher(Generic[I, T]):
    """See the module docstring. Run with ``await nursery.start(batcher.run)``; items submitted before that wait."""

    def __init__(
        self,
        send: Callable[[list[I]], Awaitable[Sequence[Answer[T]]]],
        *,
        max_batch: int,
        max_queued: int,
        parallel: int = 1,
        linger: float = 0.0,
        key: Callable[[I], Hashable] | None = None,
        stopped: Callable[[I, bool], outcome.Outcome[T]] = _closed,  # type: ignore[assignment]
    ) -> None:
        if max_batch < 1 or max_queued < 1 or parallel < 1 or linger < 0:
            raise ValueError("max_batch, max_queued and parallel must be >= 1 and linger >= 0")
        self._send = send
        self._max_batch = max_batch
        self._room = trio.CapacityLimiter(max_queued)
        self._parallel = parallel
        self._idle = 0  # senders waiting for a batch
        self._idle_senders = trio.lowlevel.ParkingLot()  # an item wakes one of them, not all
        self._linger = linger
        self._key = key
        self._stopped = stopped
        self._queue: list[_Slot[I, T]] = []
        self._changed = trio.Event()
        self._closed = False
        self._running = False
        self._scope: trio.CancelScope | None = None

    @property
    def queued(self) -> int:
        """Items queued or in flight (at most ``max_queued``)."""
        return self._room.borrowed_tokens

    @property
    def running(self) -> bool:
        """``run`` has started and not stopped."""
        return self._running

    async def submit(self, item: I) -> T:
        """Wait for room, queue ``item`` and return its answer (or raise its error)."""
        await _acquire(self._room)
        try:
            if self._closed:
                raise BatcherClosed("the batcher is closed")
            slot: _Slot[I, T] = _Slot(item)
            self._queue.append(slot)
            self._wake()
            try:
                await slot.done.wait()
            except BaseException:
                slot.abandoned = True
                raise
            assert slot.answer is not None
            return slot.answer.unwrap()
        finally:
            self._room.release()

    def close(self) -> None:
        """Refuse new items; queued ones are still sent, then ``run`` returns."""
        self._closed = True
        self._wake()

    def abort(self) -> None:
        """Refuse new items and settle every unanswered one with ``stopped`` now; ``run`` returns."""
        self._closed = True
        self._settle_queued()
        if self._scope is not None:
            self._scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._running = True
        try:
            with trio.CancelScope() as self._scope:
                async with trio.open_nursery() as nursery:
                    for _ in range(self._parallel):
                        nursery.start_soon(self._sender)
                    task_status.started()
        finally:
            self._running = False
            self._closed = True
            self._settle_queued()

    async def _sender(self) -> None:
        """One of ``parallel`` long-lived senders: a batch is sent by a task already waiting for it, not by a
        new one (starting a task is one more trip through the scheduler for every batch)."""
        while (batch := await self._next_batch()) is not None:
            await self._send_batch(batch)

    def _wake(self) -> None:
        self._changed.set()  # a sender lingering for company
        self._changed = trio.Event()
        self._idle_senders.unpark()

    def _settle_queued(self) -> None:
        queue, self._queue = self._queue, []
        for slot in queue:
            slot.settle(self._stopped(slot.item, False))

    async def _next_batch(self) -> list[_Slot[I, T]] | None:
        """Wait for an item, linger, and take a batch (None: closed and empty)."""
        while True:
            self._queue = [s for s in self._queue if not s.abandoned]
            if not self._queue:
                if self._closed:
                    self._idle_senders.unpark_all()  # the other idle senders see it too
                    return None
                self._idle += 1
                try:
                    await self._idle_senders.park()
                finally:
                    self._idle -= 1
                continue
            if self._linger > 0 and self._idle == 0:  # this sender was the last free one
                deadline = trio.current_time() + self._linger
                while len(self._queue) < self._max_batch and not self._closed:
                    with trio.move_on_at(deadline) as waited:
                        await self._changed.wait()
                    if waited.cancelled_caught:
                        break
            batch = self._take()
            if self._queue:  # left for a later batch (full, or a key already in this one): hand it on
                self._idle_senders.unpark()
            if batch:
                return batch

    def _take(self) -> list[_Slot[I, T]]:
        batch: list[_Slot[I, T]] = []
        keys: set[Hashable] = set()
        rest: list[_Slot[I, T]] = []
        for slot in self._queue:
            if slot.abandoned:
                continue
            key = self._key(slot.item) if self._key is not None else None
            if len(batch) < self._max_batch and (key is None or key not in keys):
                keys.add(key)
                batch.append(slot)
            else:
                rest.append(slot)
        self._queue = rest
        return batch

    async def _send_batch(self, batch: list[_Slot[I, T]]) -> None:
        retry: list[_Slot[I, T]] = []
        try:
            try:
                answers = await self._send([slot.item for slot in batch])
                if len(answers) != len(batch):
                    raise RuntimeError(f"send answered {len(answers)} of {len(batch)} items")
            except Exception as exc:
                for slot in batch:
                    slot.settle(outcome.Error(exc))
                return
            for slot, answer in zip(batch, answers, strict=True):
                if isinstance(answer, Retry):
                    if not slot.abandoned:
                        retry.append(slot)
                else:
                    slot.settle(answer)
            if retry:
                self._queue[:0] = retry
                self._wake()
        finally:
            for slot in batch:
                if not slot.done.is_set() and slot not in retry:  # cancelled mid-send: nobody will answer these
                    slot.settle(self._stopped(slot.item, True))
