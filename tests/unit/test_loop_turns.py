"""trio-asyncio runs every ready asyncio callback in one trio turn, up to a bound, and a socket watcher runs what
its callback made ready in its own turn (csms/storage/loop_turns.py)."""

from __future__ import annotations

import socket

import trio
import trio.lowlevel
import trio.testing
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


async def test_a_socket_watcher_runs_what_its_callback_made_ready_in_order_and_at_once() -> None:
    """The watcher drains the queue itself; callbacks keep their order even when the loop task was waiting
    (a channel would have handed it the first one: the watcher then ran the second first)."""
    async with trio_asyncio.open_loop() as loop:
        run_ready_callbacks_per_turn(loop)
        ran: list[int] = []
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)

            def on_readable() -> None:
                a.recv(16)
                for i in range(3):
                    loop.call_soon(ran.append, i)

            loop.add_reader(a.fileno(), on_readable)
            await trio.testing.wait_all_tasks_blocked()  # the loop task waits for work, the watcher for data
            b.send(b"x")
            with trio.fail_after(5):
                while not ran:
                    await trio.lowlevel.checkpoint()
            assert ran == [0, 1, 2]  # in order, and all in the watcher's turn
            loop.remove_reader(a.fileno())
