"""Bounded paths in a reconnect storm: coalesced lookups and handshake slots never queue without limit."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from csms.stations.handshake import Refusal
from csms.stations.handshake_slots import HandshakeSlots
from csms.storage import Coalescer


async def test_a_coalescer_holds_at_most_a_bounded_queue_and_answers_everyone() -> None:
    release = trio.Event()
    batches: list[int] = []

    async def bulk(requests: list[int]) -> list[int]:
        batches.append(len(requests))
        await release.wait()
        return [r * 2 for r in requests]

    # Defaults: room for every parallel slot's full batch plus one more batch (4 x (1 + 1) = 8).
    coalescer: Coalescer[int, int] = Coalescer(bulk, key=lambda r: r, max_batch=4, parallel=1)
    answers: dict[int, int] = {}

    async def ask(n: int) -> None:
        answers[n] = await coalescer.submit(n)

    async with trio.open_nursery() as nursery:
        await nursery.start(coalescer.run)
        for n in range(50):
            nursery.start_soon(ask, n)
        await trio.testing.wait_all_tasks_blocked()
        assert coalescer.queued == 8  # the other 42 wait for room, not in the queue
        assert batches == [4]
        release.set()
        while len(answers) < 50:
            await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert answers == {n: n * 2 for n in range(50)}
    assert max(batches) == 4 and coalescer.queued == 0


async def test_a_submitter_waiting_for_room_gives_up_at_its_own_deadline() -> None:
    async def never(requests: list[int]) -> list[int]:
        await trio.sleep_forever()
        raise AssertionError

    coalescer: Coalescer[int, int] = Coalescer(never, key=lambda r: r, max_batch=1, parallel=1, max_queued=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(coalescer.run)
        nursery.start_soon(coalescer.submit, 1)
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(0.05) as waited:
            await coalescer.submit(2)
        assert waited.cancelled_caught and coalescer.queued == 1
        nursery.cancel_scope.cancel()


async def test_handshake_slots_wait_briefly_then_refuse_with_retry_after(autojump_clock: trio.abc.Clock) -> None:
    slots = HandshakeSlots(limit=2, wait=2.0)
    holding = trio.Event()
    release = trio.Event()

    async def hold() -> None:
        async with slots.slot():
            holding.set()
            await release.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold)
        nursery.start_soon(hold)
        await trio.testing.wait_all_tasks_blocked()
        started = trio.current_time()
        with pytest.raises(Refusal) as refused:
            async with slots.slot():
                pass
        assert trio.current_time() - started == pytest.approx(2.0)  # waited for a slot, then gave up
        assert refused.value.status == 503
        assert 1 <= int(dict(refused.value.headers)["Retry-After"]) <= 5
        # A slot freed within the wait is taken.
        nursery.start_soon(_release_after, release, 1.0)
        async with slots.slot():
            assert trio.current_time() - started == pytest.approx(3.0)


async def test_handshake_slots_refuse_at_once_when_as_many_already_wait(autojump_clock: trio.abc.Clock) -> None:
    slots = HandshakeSlots(limit=1, wait=2.0)
    release = trio.Event()
    refusals: list[float] = []

    async def try_one() -> None:
        started = trio.current_time()
        try:
            async with slots.slot():
                await release.wait()
        except Refusal:
            refusals.append(trio.current_time() - started)

    async with trio.open_nursery() as nursery:
        for _ in range(3):  # one holds, one waits, the third is refused without waiting
            nursery.start_soon(try_one)
        await trio.testing.wait_all_tasks_blocked()
        assert refusals == [0.0]
        await trio.sleep(3)  # (virtual time) the waiting one gives up after its 2 s
        assert refusals == [0.0, pytest.approx(2.0)]
        release.set()


async def _release_after(event: trio.Event, seconds: float) -> None:
    await trio.sleep(seconds)
    event.set()
