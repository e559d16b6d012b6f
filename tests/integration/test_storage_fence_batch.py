"""Concurrent fence records share statements (a reconnect storm) and each still gets its exact outcome."""

from __future__ import annotations

import pytest
import trio

from csms.storage import Coalescer, Database

pytestmark = pytest.mark.integration


async def test_concurrent_fence_records_keep_per_station_outcomes(db: Database) -> None:
    for i in range(0, 60, 2):  # even stations already hold a claim at revision 100 (fence 1)
        assert await db.record_fence(f"CP-{i}", 1, 100, "node-a") == 1
    outcomes: dict[tuple[str, int], int | None] = {}

    async def record(station: str, revision: int, node: str) -> None:
        outcomes[(station, revision)] = await db.record_fence(station, 1, revision, node)

    async with trio.open_nursery() as nursery:
        for i in range(60):
            nursery.start_soon(record, f"CP-{i}", 50, "node-b")  # older than 100: refused for even stations
        for i in range(0, 60, 3):
            nursery.start_soon(record, f"CP-{i}", 200, "node-b")  # same station twice at once: both exact

    for i in range(60):
        if i % 3:  # (the others raced their own newer claim: either order is right for the older one)
            assert outcomes[(f"CP-{i}", 50)] == (None if i % 2 == 0 else 1), i
    for i in range(0, 60, 3):
        fence = outcomes[(f"CP-{i}", 200)]
        assert fence is not None, i
        assert await db.current_fence(f"CP-{i}") == fence
    for i in range(60):
        if i % 3:
            assert await db.current_fence(f"CP-{i}") == 1


async def test_coalescer_batches_and_isolates_failures() -> None:
    calls: list[list[int]] = []

    async def bulk(requests: list[int]) -> list[int]:
        calls.append(requests)
        await trio.sleep(0.01)
        if 13 in requests:
            raise ValueError("unlucky")
        return [r * 2 for r in requests]

    coalescer: Coalescer[int, int] = Coalescer(bulk, key=lambda r: r, max_batch=8, parallel=1)
    results: dict[int, int | str] = {}

    async def ask(r: int) -> None:
        try:
            results[r] = await coalescer.submit(r)
        except ValueError:
            results[r] = "error"

    async with trio.open_nursery() as nursery:
        await nursery.start(coalescer.run)
        async with trio.open_nursery() as askers:
            for r in range(20):
                askers.start_soon(ask, r)
        coalescer.close()

    assert len(calls) < 20  # coalesced
    assert all(len(c) <= 8 for c in calls)
    failed = next(c for c in calls if 13 in c)
    for r in range(20):
        assert results[r] == ("error" if r in failed else 2 * r), r
    assert await coalescer.submit(4) == 8  # closed: straight to bulk
