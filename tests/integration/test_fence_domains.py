"""Fence tokens in one domain (issue 9 item 0): claims are ordered by (epoch, revision), the fence grows per station
whatever coordinator issued the claim, and a stale coordinator domain can never take a station back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from cluster import SingleNodeCoordinator
from csms.storage import Database, Fence, FenceRejected, Statement

pytestmark = pytest.mark.integration

_LOG = Statement("INSERT INTO log VALUES ('CP-1')")


@asynccontextmanager
async def _running(coordinator: SingleNodeCoordinator) -> AsyncIterator[None]:
    async with trio.open_nursery() as nursery:
        await nursery.start(coordinator.run)
        yield
        await coordinator.drain()


async def test_the_coordinators_order_decides_not_the_order_records_arrive(db: Database) -> None:
    epoch, newest = await db.fence_epoch("etcd:one")
    assert newest
    assert await db.record_fence("CP-1", epoch, 11, "node-b") == 1  # the newer etcd claim is recorded first
    assert await db.record_fence("CP-1", epoch, 10, "node-a") is None  # the older one, arriving late, loses
    assert await db.record_fence("CP-1", epoch, 12, "node-a") == 2


async def test_fences_grow_across_restarts_a_scale_out_and_an_etcd_rebuilt_from_empty(db: Database) -> None:
    await db.execute("CREATE TABLE log (station text)")
    fences: list[int] = []

    async def claim(epoch: int, revision: int, node: str) -> int:
        fence = await db.record_fence("CP-1", epoch, revision, node)
        assert fence is not None, (epoch, revision, node)
        fences.append(fence)
        await db.write_statements([_LOG], fence=Fence("CP-1", fence))
        return fence

    for _ in range(2):  # a single node, then the same node restarted: its counter starts again at 1
        solo = SingleNodeCoordinator("solo", epochs=db)
        async with _running(solo):
            first = await solo.claim("CP-1", "c1")
            assert first.revision == 1
            await claim(first.epoch, first.revision, "solo")

    old_cluster, _ = await db.fence_epoch("etcd:first-cluster")  # scaled out to etcd: revisions in the thousands
    await claim(old_cluster, 5000, "replica-1")
    new_cluster, _ = await db.fence_epoch("etcd:rebuilt")  # etcd rebuilt from empty: revisions restart
    last = await claim(new_cluster, 3, "replica-2")
    assert fences == [1, 2, 3, 4]

    # A replica still on the old etcd (or a stale single node) cannot take the station back, however large
    # its revision, and its writes under an older fence are refused.
    assert await db.record_fence("CP-1", old_cluster, 10**9, "replica-1") is None
    with pytest.raises(FenceRejected):
        await db.write_statements([_LOG], fence=Fence("CP-1", 3))
    assert await db.current_fence("CP-1") == last
    assert await db.fetchval("SELECT count(*) FROM log") == 4


async def test_an_old_domain_is_told_it_fell_behind(db: Database) -> None:
    etcd_epoch, newest = await db.fence_epoch("etcd:cluster")
    assert newest
    solo_epoch, newest = await db.fence_epoch("single:solo:run-1")
    assert newest and solo_epoch > etcd_epoch
    # The etcd cluster comes back: its domain is older than the single node's, so it must start a new one.
    assert await db.fence_epoch("etcd:cluster") == (etcd_epoch, False)
    again, newest = await db.fence_epoch("etcd:cluster-2")
    assert newest and again > solo_epoch


async def test_rows_from_before_the_migration_keep_working(db: Database) -> None:
    """A row recorded under the old scheme (a wall-clock token, epoch 0): writes under it still commit, and the
    first claim under the new scheme takes over from it with the next fence."""
    await db.execute("CREATE TABLE log (station text)")
    legacy = 1_764_000_000_000_000_000
    await db.execute(
        "INSERT INTO station_fences (station_id, fence, revision, node_id) VALUES ('CP-1', $1, $1, 'old')", legacy
    )
    await db.write_statements([_LOG], fence=Fence("CP-1", legacy))
    epoch, _ = await db.fence_epoch("etcd:cluster")
    assert await db.record_fence("CP-1", epoch, 7, "new") == legacy + 1
    with pytest.raises(FenceRejected):
        await db.write_statements([_LOG], fence=Fence("CP-1", legacy))
