"""The slow-step instrument names the task that held the event loop, and only that one."""

from __future__ import annotations

import logging
import time

import trio

from csms.observability import SlowSteps


class Recorded:
    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []

    def observe(self, task_name: str, seconds: float) -> None:
        self.steps.append((task_name, seconds))


async def _blocks_the_loop() -> None:
    await trio.lowlevel.checkpoint()
    time.sleep(0.25)  # noqa: ASYNC251 - the blocking call this instrument exists to find
    await trio.lowlevel.checkpoint()


async def _behaves() -> None:
    for _ in range(20):
        await trio.sleep(0.001)


class Lines(logging.Handler):
    """The records of one logger, whatever handlers and filters other tests left on the root."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.msg, getattr(record, "task", "")))


def test_a_blocking_step_is_reported_with_its_task_name_and_logged_once() -> None:
    recorded = Recorded()

    async def main() -> None:
        # Far above what a busy CI machine's scheduling delays add to an ordinary step.
        trio.lowlevel.add_instrument(SlowSteps(0.2, recorded, log_every=60.0))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_behaves)
            nursery.start_soon(_blocks_the_loop)
            nursery.start_soon(_blocks_the_loop)

    logger, lines = logging.getLogger("csms.observability.slow_steps"), Lines()
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.WARNING)
    try:
        trio.run(main)
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    names = [name for name, _ in recorded.steps]
    assert names == [f"{__name__}._blocks_the_loop"] * 2
    assert all(seconds >= 0.25 for _, seconds in recorded.steps)
    # Rate-limited: the second is counted, not logged.
    assert lines.messages == [("a task step blocked the event loop", f"{__name__}._blocks_the_loop")]


async def _computes(seconds: float) -> None:
    await trio.lowlevel.checkpoint()
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:  # pure Python holding the GIL, as a real hot loop does
        pass
    await trio.lowlevel.checkpoint()


async def _short_step() -> None:
    await trio.lowlevel.checkpoint()
    time.sleep(0.002)  # noqa: ASYNC251 - one of many short steps that share one long batch


def test_a_step_that_computes_is_named_though_it_holds_the_gil() -> None:
    recorded = Recorded()

    async def main() -> None:
        trio.lowlevel.add_instrument(SlowSteps(0.2, recorded))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_behaves)
            nursery.start_soon(_computes, 0.3)

    trio.run(main)
    assert [name for name, _ in recorded.steps] == [f"{__name__}._computes"]
    assert recorded.steps[0][1] >= 0.3


def test_many_short_steps_in_one_long_batch_are_not_reported() -> None:
    """A busy loop is not a blocked one: 500 steps of 2 ms share a one-second batch, none is slow."""
    recorded = Recorded()

    async def main() -> None:
        trio.lowlevel.add_instrument(SlowSteps(0.5, recorded))
        async with trio.open_nursery() as nursery:
            for _ in range(500):
                nursery.start_soon(_short_step)

    trio.run(main)
    assert recorded.steps == []
