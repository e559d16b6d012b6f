"""Leader election on a real etcd: one leader, failover within a TTL, resign on drain, leader-only jobs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from cluster import LeaderJobRunner

NodeFactory = Callable[..., Awaitable[Any]]
WaitUntil = Callable[..., Awaitable[float]]


async def test_exactly_one_leader_and_failover_within_one_ttl(start_node: NodeFactory, wait_until: WaitUntil) -> None:
    ttl = 2.0
    a = await start_node("node-a", ttl=ttl)
    b = await start_node("node-b", ttl=ttl)
    await wait_until(lambda: a.coord.is_leader != b.coord.is_leader, 3, "one leader")
    await wait_until(lambda: a.coord.leader_id == b.coord.leader_id is not None, 3, "agreement")
    leader, follower = (a, b) if a.coord.is_leader else (b, a)
    assert follower.coord.leader_id == leader.coord.node_id

    leader.crash()
    took = await wait_until(lambda: follower.coord.is_leader, ttl + 1.5, "new leader")
    assert took <= ttl + 1.0, took  # lease expiry (<= TTL) + etcd's expiry sweep + one txn
    assert follower.coord.leader_id == follower.coord.node_id
    assert follower.leader_changes[-1] is True


async def test_drain_hands_leadership_over_at_once(start_node: NodeFactory, wait_until: WaitUntil) -> None:
    a = await start_node("node-a", ttl=10.0)
    await wait_until(lambda: a.coord.is_leader, 3, "a leads")
    b = await start_node("node-b", ttl=10.0)
    await wait_until(lambda: b.coord.leader_id == "node-a", 3, "b follows a")

    await a.coord.drain()
    took = await wait_until(lambda: b.coord.is_leader, 2, "b takes over")
    assert took < 1.0  # not a lease expiry: the leader key was deleted by the resignation
    assert a.leader_changes == [True, False]


async def test_leader_jobs_run_only_on_the_leader(
    start_node: NodeFactory, wait_until: WaitUntil, nursery: trio.Nursery
) -> None:
    a = await start_node("node-a", ttl=10.0)
    await wait_until(lambda: a.coord.is_leader, 3, "a leads")
    b = await start_node("node-b", ttl=10.0)
    running: set[str] = set()
    overlaps: list[set[str]] = []
    failures = 0

    def job_for(node_id: str) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            running.add(node_id)
            if len(running) > 1:
                overlaps.append(set(running))
            try:
                await trio.sleep_forever()
            finally:
                running.discard(node_id)

        return job

    async def flaky() -> None:
        nonlocal failures
        failures += 1
        raise RuntimeError("boom")  # restarted after restart_delay, while still leader

    runner_a = LeaderJobRunner(a.coord, [job_for("node-a"), flaky], restart_delay=0.05)
    runner_b = LeaderJobRunner(b.coord, [job_for("node-b")])
    await nursery.start(runner_a.run)
    await nursery.start(runner_b.run)
    await wait_until(lambda: running == {"node-a"}, 2, "job runs on the leader")
    await wait_until(lambda: failures >= 3, 2, "a failing job is restarted")

    await a.coord.drain()
    await wait_until(lambda: running == {"node-b"}, 3, "job moves to the new leader")
    assert overlaps == [] and runner_a.terms == 1 and runner_b.terms == 1
