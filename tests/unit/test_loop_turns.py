"""trio-asyncio runs every ready asyncio callback in one trio turn, up to a bound (csms/storage/loop_turns.py)."""

from __future__ import annotations

import trio
import trio.lowlevel
import trio_asyncio

from csms.storage.loop_turns import MAX_PER_TURN, run_ready_callbacks_per_turn


async def test_ready_callbacks_run_together_not_one_per_trio_turn() -> None:
    async with trio_asyncio.open_loop() as loop:
        run_ready_callbacks_per_turn(loop)
        ran: list[int] = []
        for i in range(100):
            loop.call_soon(ran.append, i)
        for _ in range(3):
            await trio.lowlevel.checkpoint()
        assert ran == list(range(100))  # before: about one per turn


async def test_a_flood_of_callbacks_still_lets_trio_tasks_run() -> None:
    async with trio_asyncio.open_loop() as loop:
        run_ready_callbacks_per_turn(loop)
        ran: list[int] = []
        for i in range(10 * MAX_PER_TURN):
            loop.call_soon(ran.append, i)
        while not ran:  # the loop task's first turn
            await trio.lowlevel.checkpoint()
        assert len(ran) < 10 * MAX_PER_TURN  # a trio task got a turn before the asyncio backlog was done
        with trio.fail_after(5):
            while len(ran) < 10 * MAX_PER_TURN:
                await trio.lowlevel.checkpoint()
        assert ran == list(range(10 * MAX_PER_TURN))  # in order


async def test_timers_still_fire() -> None:
    async with trio_asyncio.open_loop() as loop:
        run_ready_callbacks_per_turn(loop)
        fired = trio.Event()
        loop.call_later(0.01, fired.set)
        for _ in range(50):
            loop.call_soon(lambda: None)
        with trio.fail_after(5):
            await fired.wait()
