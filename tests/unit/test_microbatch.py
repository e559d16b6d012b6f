"""The one micro-batching mechanism: batching, keys, bounds, linger, retry, close and abort (no sleeps to sync)."""

from __future__ import annotations

import outcome
import pytest
import trio
import trio.testing

from microbatch import RETRY, Answer, BatcherClosed, MicroBatcher
from tests.batches import BatchCounter

pytestmark = pytest.mark.fast


class Gate:
    """A ``send`` that records each batch and blocks until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.open = trio.Event()
        self.arrived = trio.Event()

    async def send(self, items: list[int]) -> list[Answer[int]]:
        self.batches.append(items)
        self.arrived.set()
        await self.open.wait()
        return [outcome.Value(i * 10) for i in items]


async def test_items_queued_during_a_send_ride_in_the_next_batch_and_each_gets_its_own_answer() -> None:
    gate = Gate()
    batcher: MicroBatcher[int, int] = MicroBatcher(gate.send, max_batch=3, max_queued=10)
    answers: dict[int, int] = {}

    async def ask(n: int) -> None:
        answers[n] = await batcher.submit(n)

    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        nursery.start_soon(ask, 0)
        await gate.arrived.wait()
        for n in range(1, 6):
            nursery.start_soon(ask, n)
        await trio.testing.wait_all_tasks_blocked()
        assert batcher.queued == 6
        gate.open.set()
        await trio.testing.wait_all_tasks_blocked()
        batcher.close()
    assert [len(b) for b in gate.batches] == [1, 3, 2] and sorted(i for b in gate.batches for i in b) == list(range(6))
    assert answers == {n: n * 10 for n in range(6)}


async def test_one_item_per_key_per_batch() -> None:
    gate = Gate()
    gate.open.set()
    batcher: MicroBatcher[int, int] = MicroBatcher(gate.send, max_batch=10, max_queued=10, key=lambda i: i % 2)
    async with trio.open_nursery() as nursery:
        for n in range(4):
            nursery.start_soon(batcher.submit, n)
        await trio.testing.wait_all_tasks_blocked()
        await nursery.start(batcher.run)
        await trio.testing.wait_all_tasks_blocked()
        batcher.close()
    assert len(gate.batches) == 2 and all(sorted(i % 2 for i in b) == [0, 1] for b in gate.batches)


async def test_submit_waits_for_room_and_a_cancelled_waiter_leaves_no_trace() -> None:
    gate = Gate()
    batcher: MicroBatcher[int, int] = MicroBatcher(gate.send, max_batch=1, max_queued=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        nursery.start_soon(batcher.submit, 1)
        await gate.arrived.wait()
        with trio.move_on_after(0.01) as waited:
            await batcher.submit(2)
        assert waited.cancelled_caught and batcher.queued == 1
        gate.open.set()
        await trio.testing.wait_all_tasks_blocked()
        batcher.close()
    assert gate.batches == [[1]]


async def test_a_failing_send_fails_its_batch_only_and_retry_requeues_at_the_head() -> None:
    calls: list[list[int]] = []

    async def send(items: list[int]) -> list[Answer[int]]:
        calls.append(items)
        if 9 in items:
            raise ValueError("boom")
        return [RETRY if i == 1 and len(calls) == 1 else outcome.Value(i) for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(send, max_batch=2, max_queued=10)
    results: dict[int, object] = {}

    async def ask(n: int) -> None:
        try:
            results[n] = await batcher.submit(n)
        except ValueError as exc:
            results[n] = exc

    async with trio.open_nursery() as nursery:
        for n in (1, 2, 9):
            nursery.start_soon(ask, n)
            await trio.testing.wait_all_tasks_blocked()  # queued in this order
        await nursery.start(batcher.run)
        await trio.testing.wait_all_tasks_blocked()
        batcher.close()
    assert calls == [[1, 2], [1, 9]]  # 1 answered RETRY: sent again ahead of 9
    assert results[2] == 2 and isinstance(results[1], ValueError) and isinstance(results[9], ValueError)


async def test_linger_waits_for_a_full_batch_or_the_deadline(mock_clock: trio.testing.MockClock) -> None:
    gate = Gate()
    gate.open.set()
    batcher: MicroBatcher[int, int] = MicroBatcher(gate.send, max_batch=3, max_queued=10, linger=5.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        nursery.start_soon(batcher.submit, 1)
        await trio.testing.wait_all_tasks_blocked()
        assert gate.batches == []  # lingering
        nursery.start_soon(batcher.submit, 2)
        nursery.start_soon(batcher.submit, 3)
        await trio.testing.wait_all_tasks_blocked()
        assert [sorted(b) for b in gate.batches] == [[1, 2, 3]]  # full: sent at once
        nursery.start_soon(batcher.submit, 4)
        await trio.testing.wait_all_tasks_blocked()
        assert len(gate.batches) == 1
        mock_clock.jump(5.0)
        await trio.testing.wait_all_tasks_blocked()
        assert gate.batches[1:] == [[4]]
        batcher.close()


async def test_linger_only_when_taking_the_last_free_slot(mock_clock: trio.testing.MockClock) -> None:
    """With a slot to spare a batch goes at once (waiting only adds latency); the one that takes the last free
    slot lingers for company, as the next chance to send is a whole batch away."""
    gate = Gate()
    batcher: MicroBatcher[int, int] = MicroBatcher(gate.send, max_batch=3, max_queued=10, parallel=2, linger=5.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        nursery.start_soon(batcher.submit, 1)
        await trio.testing.wait_all_tasks_blocked()
        assert gate.batches == [[1]]  # the other slot is free: no lingering
        nursery.start_soon(batcher.submit, 2)
        await trio.testing.wait_all_tasks_blocked()
        assert gate.batches == [[1]]  # takes the last slot: lingers
        nursery.start_soon(batcher.submit, 3)
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(5.0)
        await trio.testing.wait_all_tasks_blocked()
        assert gate.batches == [[1], [2, 3]]
        gate.open.set()
        batcher.close()


async def test_close_sends_what_is_queued_and_refuses_new_items() -> None:
    gate = Gate()
    batcher: MicroBatcher[int, int] = MicroBatcher(gate.send, max_batch=1, max_queued=10)
    answers: list[int] = []

    async def ask(n: int) -> None:
        answers.append(await batcher.submit(n))

    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        nursery.start_soon(ask, 1)
        nursery.start_soon(ask, 2)
        await gate.arrived.wait()
        batcher.close()
        with pytest.raises(BatcherClosed):
            await batcher.submit(3)
        gate.open.set()
    assert sorted(answers) == [10, 20]


async def test_abort_settles_queued_and_in_flight_items_with_stopped() -> None:
    gate = Gate()
    batcher: MicroBatcher[int, int] = MicroBatcher(
        gate.send,
        max_batch=1,
        max_queued=10,
        stopped=lambda item, sent: outcome.Error(RuntimeError(f"{item} {'sent' if sent else 'queued'}")),
    )
    errors: list[str] = []

    async def ask(n: int) -> None:
        with pytest.raises(RuntimeError) as caught:
            await batcher.submit(n)
        errors.append(str(caught.value))

    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        nursery.start_soon(ask, 1)
        await gate.arrived.wait()
        nursery.start_soon(ask, 2)
        await trio.testing.wait_all_tasks_blocked()
        batcher.abort()
    assert sorted(errors) == ["1 sent", "2 queued"]
    assert not batcher.running


async def _echo(items: list[int]) -> list[Answer[int]]:
    return [outcome.Value(i) for i in items]


async def test_a_lone_item_costs_two_scheduler_batches_from_submit_to_answer() -> None:
    """Under load every trip through trio's scheduler waits a whole batch (milliseconds with thousands of
    stations runnable), so taking free room, a free slot or starting a task per batch must not cost one each:
    a waiting sender's wake-up and the answer's are the only trips left (5 before)."""
    batches = BatchCounter()

    batcher: MicroBatcher[int, int] = MicroBatcher(_echo, max_batch=8, max_queued=8, parallel=2)
    rounds = 20
    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        nursery.start_soon(batches.run)
        await trio.lowlevel.checkpoint()
        start = batches.count
        for i in range(rounds):
            assert await batcher.submit(i) == i
        per_item = (batches.count - start) / rounds
        nursery.cancel_scope.cancel()
    assert per_item <= 2.5, f"{per_item:.1f} scheduler batches per item"


async def test_an_item_wakes_one_idle_sender_not_all() -> None:
    """Every wake-up is a task step on the loop; with four writers idle, waking all four for each write was
    three wasted steps per write."""
    woken: list[str] = []

    class Scheduled(trio.abc.Instrument):
        def task_scheduled(self, task: trio.lowlevel.Task) -> None:
            if task.name.endswith("._sender"):
                woken.append(task.name)

    batcher: MicroBatcher[int, int] = MicroBatcher(_echo, max_batch=8, max_queued=8, parallel=4)
    items = 20
    async with trio.open_nursery() as nursery:
        await nursery.start(batcher.run)
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.add_instrument(Scheduled())
        for i in range(items):
            assert await batcher.submit(i) == i
        nursery.cancel_scope.cancel()
    # one per item, plus the four woken at the end to be cancelled (84 when every item woke all four)
    assert len(woken) <= items + 4, f"{len(woken)} sender wake-ups for {items} items"
