"""Let the trio-asyncio loop run every ready asyncio callback per trio turn, not one.

trio-asyncio's loop task takes one callback from its queue per ``await`` (``MemoryReceiveChannel.receive``
ends in a checkpoint), so each asyncio callback waits for a whole trio scheduling batch. With thousands of
station tasks runnable, a batch takes milliseconds to tens of milliseconds, and one Postgres round trip needs
several callbacks (the reader's data, the future, the awaiting task's step, the bridge's completion): the
asyncio side slowed to a few dozen callbacks a second while Postgres sat idle, writes timed out and the
replica never caught up (19,000 stations at speed 1: 12 answers/s, Postgres at 4 % of a core). Here, after the
awaited callback, the loop runs what else is ready, up to ``MAX_PER_TURN`` (so asyncio cannot starve trio
either), before yielding again.

The same holds for I/O: trio-asyncio watches each socket from a trio task of its own, which runs the socket's
callback (asyncpg's ``data_received``: the reply is in) and then waits for the loop task's next turn before
watching again, so what the reply made ready (the awaiting coroutine's next step, usually sending the next
statement) waited one more batch and the socket was re-armed one after that: ~3 batches per round trip. Here
the watcher runs what its callback made ready itself, in the same turn: ~1 batch per round trip. The bridge
does the same when it starts a coroutine (``run_ready``): its first step runs in the caller's turn. For that
the loop's queue is a ``ReadyQueue``: a memory channel hands an item to a waiting receiver when it is sent, so
the loop task would own a callback before running it and a watcher draining the queue meanwhile would run
later callbacks first (a connect's transport was set up before its connect watcher was removed).
Measured in scheduler batches per query with 1,000 busy trio tasks: 4.0 before, 2.1 after
(``tests/integration/test_storage_busy_scheduler.py``).
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import types
from typing import Any

import sniffio
import trio
import trio_asyncio
from trio_asyncio._handles import AsyncHandle

MAX_PER_TURN = 256


class ReadyQueue:
    """The loop's FIFO of ready handles (the memory channel's ``send_nowait``/``receive``/``receive_nowait``).
    A receiver takes its item when it runs, not when it is woken, so every task draining it keeps the order."""

    def __init__(self) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._lot = trio.lowlevel.ParkingLot()

    def send_nowait(self, item: Any) -> None:
        self._items.append(item)
        if self._lot:
            self._lot.unpark_all()

    def receive_nowait(self) -> Any:
        if not self._items:
            raise trio.WouldBlock
        return self._items.popleft()

    def peek(self) -> Any:
        return self._items[0] if self._items else None

    async def receive(self) -> Any:
        if self._items:
            await trio.lowlevel.checkpoint()  # as a channel's receive: always a checkpoint
        while not self._items:
            await self._lot.park()
        return self._items.popleft()


def run_ready_callbacks_per_turn(loop: trio_asyncio.TrioEventLoop) -> None:
    """Install the draining step, the ready queue and the socket watcher on a running loop (it looks each up
    on every use). Call it right after ``open_loop()``, before anything is scheduled on the loop."""
    old_send, old_receive = loop._q_send, loop._q_recv
    queue = ReadyQueue()
    while True:
        try:
            queue.send_nowait(old_receive.receive_nowait())
        except trio.WouldBlock:
            break
    loop._q_send = loop._q_recv = queue
    old_send.send_nowait(asyncio.Handle(_nothing, (), loop))  # wakes the loop task from the old channel
    one = loop._main_loop_one

    async def drain(self: Any, no_wait: bool = False) -> None:
        await one(no_wait)
        await _drained(self)

    loop._main_loop_one = types.MethodType(drain, loop)
    loop._io_task = types.MethodType(_io_task, loop)


async def run_ready(loop: trio_asyncio.TrioEventLoop) -> None:
    """Run what is ready on the loop now, in the calling trio task's turn (not the loop task's)."""
    await _drained(loop, watcher=True)


def _nothing() -> None:
    pass


async def _io_task(self: Any, fd: int, handle: Any, wait_ready: Any) -> None:
    """trio-asyncio's socket watcher (``_base._io_task``), draining the ready queue after the callback instead
    of waiting for the loop task (``synchronize``) unless the drain stopped early."""
    with handle._scope:
        try:
            while not handle._cancelled:
                try:
                    await wait_ready(fd)
                except OSError:
                    if handle._cancelled:  # closed between cancel and close, as trio-asyncio allows
                        break
                    raise
                if handle._cancelled:
                    break
                handle._run()
                if not await _drained(self, watcher=True):
                    await self.synchronize()
        except Exception as exc:
            handle._raise(exc)


async def _drained(loop: Any, *, watcher: bool = False) -> bool:
    """Run ready callbacks up to the bound; True if none is left. A watcher leaves the loop's own stop
    request (it ends the loop task by raising there) to the loop task."""
    for _ in range(MAX_PER_TURN):
        if watcher and _is_stop(loop._q_recv.peek()):
            return False
        if not await _run_next_ready(loop):
            return True
    return False


def _is_stop(handle: Any) -> bool:
    return handle is not None and getattr(handle._callback, "__name__", "") == "stop_me"


async def _run_next_ready(loop: Any) -> bool:
    """Run one due timer or queued callback without waiting; False when nothing is ready."""
    timers = loop._timers
    if timers and timers[0]._when <= loop.time():
        handle = heapq.heappop(timers)
    else:
        try:
            handle = loop._q_recv.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            return False
        if isinstance(handle, asyncio.TimerHandle):
            heapq.heappush(timers, handle)
            return True
    if isinstance(handle, AsyncHandle):  # a trio task to start: as the loop itself does it
        handle._context.run(loop._nursery.start_soon, handle._run, name=handle._callback)
        await handle._started.wait()
    elif not handle._cancelled:
        previous, sniffio.thread_local.name = sniffio.thread_local.name, "asyncio"
        try:
            handle._run()
        finally:
            sniffio.thread_local.name = previous
    return True
