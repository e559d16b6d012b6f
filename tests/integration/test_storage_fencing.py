"""Fence tokens: recorded in claim order, and a write with a stale token never commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import pytest
import trio

from csms.storage import Connection, Database, Fence, FenceRejected, NullObserver, WriteOp

pytestmark = pytest.mark.integration


@dataclass
class Rejections(NullObserver):
    stations: list[str] = field(default_factory=list)

    def fence_rejected(self, station_id: str) -> None:
        self.stations.append(station_id)


def log(station: str, what: str) -> WriteOp[None]:
    async def op(conn: Connection) -> None:
        await conn.execute("INSERT INTO log (station, what) VALUES ($1, $2)", station, what)

    return op


async def test_record_fence_only_moves_forward(db: Database) -> None:
    assert await db.record_fence("CP-1", 1, 5, "node-a") == 1
    assert await db.record_fence("CP-1", 1, 4, "node-b") is None
    assert await db.record_fence("CP-1", 1, 5, "node-a") == 1  # the same claim again: an idempotent retry
    assert await db.record_fence("CP-1", 1, 5, "node-b") is None  # same key, other node: not ours
    assert await db.current_fence("CP-1") == 1
    assert await db.record_fence("CP-1", 1, 9, "node-b") == 2
    assert await db.current_fence("CP-1") == 2
    assert await db.current_fence("CP-unknown") is None


async def test_stale_fences_are_rejected_and_the_rest_of_the_batch_commits(database_url: str) -> None:
    observer = Rejections()
    async with Database.open(database_url, observer=observer, max_wait=0.05) as db:
        await db.migrate()
        await db.execute("CREATE TABLE log (station text, what text)")
        assert await db.record_fence("CP-1", 1, 10, "node-a") == 1
        assert await db.record_fence("CP-1", 1, 11, "node-a") == 2
        assert await db.record_fence("CP-2", 1, 20, "node-a") == 1
        results: dict[str, object] = {}

        async def write(name: str, station: str, fence: Fence | None) -> None:
            try:
                await db.write(log(station, name), fence=fence)
                results[name] = "ok"
            except FenceRejected as exc:
                results[name] = exc

        async with trio.open_nursery() as nursery:
            nursery.start_soon(write, "current-1", "CP-1", Fence("CP-1", 2))
            nursery.start_soon(write, "stale-1", "CP-1", Fence("CP-1", 1))
            nursery.start_soon(write, "current-2", "CP-2", Fence("CP-2", 1))
            nursery.start_soon(write, "unclaimed", "CP-3", Fence("CP-3", 1))
            nursery.start_soon(write, "unfenced", "CP-4", None)

        stale = results.pop("stale-1")
        assert isinstance(stale, FenceRejected)
        assert (stale.station_id, stale.token, stale.current) == ("CP-1", 1, 2)
        assert isinstance(results.pop("unclaimed"), FenceRejected)
        assert set(results.values()) == {"ok"}
        rows = await db.fetch("SELECT what FROM log ORDER BY what")
        assert [r["what"] for r in rows] == ["current-1", "current-2", "unfenced"]
        assert sorted(observer.stations) == ["CP-1", "CP-3"]


async def test_a_takeover_waits_for_in_flight_writes_and_then_fences_them_out(db: Database) -> None:
    """FOR SHARE on the fence row: the new owner's claim lands after the old owner's batch, never inside."""
    await db.execute("CREATE TABLE log (station text, what text)")
    assert await db.record_fence("CP-1", 1, 1, "node-a") == 1
    seen_at_claim: list[str] = []

    async def slow_old_owner_write(conn: Connection) -> None:
        await conn.execute("SELECT pg_sleep(0.3)")
        await conn.execute("INSERT INTO log VALUES ('CP-1', 'old owner')")

    async def new_owner() -> None:
        # Wait until the old owner's batch is really in flight (holding the fence row), not for a fixed time.
        with trio.fail_after(10):
            while not await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(0.3)%'"
            ):
                await trio.sleep(0.01)
        assert await db.record_fence("CP-1", 1, 2, "node-b") == 2
        seen_at_claim.extend(r["what"] for r in await db.fetch("SELECT what FROM log"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(db.write, slow_old_owner_write, fence=Fence("CP-1", 1)))
        nursery.start_soon(new_owner)
    # The claim could only land once the old owner's batch had committed.
    assert seen_at_claim == ["old owner"]

    with pytest.raises(FenceRejected):
        await db.write(log("CP-1", "late old owner"), fence=Fence("CP-1", 1))
    await db.write(log("CP-1", "new owner"), fence=Fence("CP-1", 2))
    rows = await db.fetch("SELECT what FROM log ORDER BY what")
    assert [r["what"] for r in rows] == ["new owner", "old owner"]
