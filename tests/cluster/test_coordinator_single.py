"""SingleNodeCoordinator: the same contract without etcd."""

from __future__ import annotations

import trio

from cluster import Claim, Coordinator, LeaderJobRunner, SingleNodeCoordinator


async def test_newest_connection_wins_and_revisions_grow(nursery: trio.Nursery) -> None:
    coord = SingleNodeCoordinator("solo", address="http://127.0.0.1:1")
    assert isinstance(coord, Coordinator)
    await nursery.start(coord.run)
    lost: list[Claim] = []
    coord.on_claim_lost(lost.append)

    first = await coord.claim("CP1", "conn-1")
    second = await coord.claim("CP1", "conn-2")
    assert second.revision > first.revision
    assert lost == [first]
    owner = await coord.owner_of("CP1")
    assert owner is not None and owner.connection_id == "conn-2" and owner.node_id == "solo"

    await coord.release(first)  # stale release: nothing happens
    assert await coord.owner_of("CP1") is not None
    await coord.release(second)
    assert await coord.owner_of("CP1") is None
    # (A restarted process starts a new fence domain: tests/integration/test_fence_domains.py.)


async def test_always_leader_until_drained(nursery: trio.Nursery) -> None:
    coord = SingleNodeCoordinator("solo")
    await nursery.start(coord.run)
    assert coord.is_leader and coord.leader_id == "solo" and coord.healthy
    await coord.claim("CP1", "c")
    assert await coord.owned_counts() == {"solo": 1}
    assert [n.node_id for n in await coord.nodes()] == ["solo"]

    started = trio.Event()
    cancelled = trio.Event()

    async def job() -> None:
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    await nursery.start(LeaderJobRunner(coord, [job]).run)
    with trio.fail_after(1):  # a leader runs its jobs
        await started.wait()
    await coord.drain()
    with trio.fail_after(1):
        await cancelled.wait()
    assert not coord.is_leader and not coord.healthy


async def test_owners_of_matches_owner_of(nursery: trio.Nursery) -> None:
    coord = SingleNodeCoordinator("solo", address="http://127.0.0.1:1")
    await nursery.start(coord.run)
    await coord.claim("CP1", "conn-1")
    owners = await coord.owners_of(["CP1", "CP2"])
    assert list(owners) == ["CP1"] and owners["CP1"] == await coord.owner_of("CP1")


async def test_a_lone_node_runs_every_exclusive_job_and_restarts_one_that_fails(nursery: trio.Nursery) -> None:
    coord = SingleNodeCoordinator("solo")
    await nursery.start(coord.run)
    runs: list[int] = []
    again = trio.Event()

    async def job() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("first run fails")  # logged, restarted; never takes the node down
        again.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as jobs:
        jobs.start_soon(coord.run_exclusive, "export", job)
        with trio.fail_after(5):
            await again.wait()
        jobs.cancel_scope.cancel()
    assert runs == [0, 1]
