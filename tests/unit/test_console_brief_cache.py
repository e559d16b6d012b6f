"""The console's brief cache of cluster-wide aggregates: one computation per key at a time, kept `seconds`."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from csms.console.brief_cache import BriefCache


async def test_concurrent_askers_share_one_computation_until_it_expires(autojump_clock: trio.testing.MockClock) -> None:
    cache = BriefCache(seconds=1.5)
    release = trio.Event()
    calls: list[float] = []

    async def count() -> int:
        calls.append(trio.current_time())
        await release.wait()
        return len(calls)

    answers: list[int] = []

    async def ask() -> None:
        answers.append(await cache.get("owned", count))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert answers == [1] * 20 and len(calls) == 1

    await trio.sleep(1.4)
    assert await cache.get("owned", count) == 1  # still fresh
    await trio.sleep(0.2)
    assert await cache.get("owned", count) == 2  # expired: computed again
    assert await cache.get(("counts", "node-a"), count) == 3  # keys are separate


async def test_a_failure_is_not_kept(autojump_clock: trio.testing.MockClock) -> None:
    cache = BriefCache(seconds=10)
    attempts = [0]

    async def flaky() -> str:
        attempts[0] += 1
        if attempts[0] == 1:
            raise OSError("etcd unreachable")
        return "ok"

    with pytest.raises(OSError):
        await cache.get("moves", flaky)
    assert await cache.get("moves", flaky) == "ok"
