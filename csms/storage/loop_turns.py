"""Let the trio-asyncio loop run every ready asyncio callback per trio turn, not one.

trio-asyncio's loop task takes one callback from its queue per ``await`` (``MemoryReceiveChannel.receive``
ends in a checkpoint), so each asyncio callback waits for a whole trio scheduling batch. With thousands of
station tasks runnable, a batch takes milliseconds to tens of milliseconds, and one Postgres round trip needs
several callbacks (the reader's data, the future, the awaiting task's step, the bridge's completion): the
asyncio side slowed to a few dozen callbacks a second while Postgres sat idle, writes timed out and the
replica never caught up (19,000 stations at speed 1: 12 answers/s, Postgres at 4 % of a core). Here, after the
awaited callback, the loop runs what else is ready, up to ``MAX_PER_TURN`` (so asyncio cannot starve trio
either), before yielding again.
"""

from __future__ import annotations

import asyncio
import heapq
import types
from typing import Any

import sniffio
import trio
import trio_asyncio
from trio_asyncio._handles import AsyncHandle

MAX_PER_TURN = 256


def run_ready_callbacks_per_turn(loop: trio_asyncio.TrioEventLoop) -> None:
    """Install the draining step on a running loop (its main loop looks the step up on every iteration)."""
    one = loop._main_loop_one

    async def drain(self: Any, no_wait: bool = False) -> None:
        await one(no_wait)
        for _ in range(MAX_PER_TURN):
            if not await _run_next_ready(self):
                return

    loop._main_loop_one = types.MethodType(drain, loop)


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
