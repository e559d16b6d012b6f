"""Leased singletons per key on a real etcd: each key's work runs on exactly one node, spread over the nodes,
moved within one TTL when its node crashes, and stopped at once when a node loses its lease."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

from cluster import EtcdClient, LeasedSingletons

NodeFactory = Callable[..., Awaitable[Any]]
WaitUntil = Callable[..., Awaitable[float]]
KEYS = [f"site-{i}" for i in range(6)]


class Workers:
    """Which node runs which key's work right now (and whether two ever ran one key at once)."""

    def __init__(self) -> None:
        self.running: dict[str, str] = {}
        self.overlaps = 0

    async def work(self, node_id: str, key: str) -> None:
        if key in self.running:
            self.overlaps += 1
        self.running[key] = node_id
        try:
            await trio.sleep_forever()
        finally:
            if self.running.get(key) == node_id:
                del self.running[key]


async def wanted() -> list[str]:
    await trio.lowlevel.checkpoint()
    return KEYS


async def test_each_key_on_one_node_spread_and_moved_within_one_ttl(
    start_node: NodeFactory, wait_until: WaitUntil, nursery: trio.Nursery
) -> None:
    ttl = 2.0
    workers = Workers()
    nodes = [await start_node(f"node-{n}", ttl=ttl) for n in "abc"]
    scopes = {}
    for node in nodes:
        singletons = LeasedSingletons(
            node.coord, "sites", wanted, partial(workers.work, node.coord.node_id), interval=0.25
        )
        scopes[node.coord.node_id] = trio.CancelScope()
        nursery.start_soon(_run_in, scopes[node.coord.node_id], singletons)
    await wait_until(lambda: len(workers.running) == len(KEYS), 5, "every key taken")
    spread = Counter(workers.running.values())
    assert len(spread) >= 2, spread  # spread over the nodes, not all on the first to poll

    victim = nodes[0].coord.node_id if spread[nodes[0].coord.node_id] else nodes[1].coord.node_id
    moved = [key for key, node in workers.running.items() if node == victim]
    next(n for n in nodes if n.coord.node_id == victim).crash()  # a SIGKILL: coordinator and work stop together
    scopes[victim].cancel()
    took = await wait_until(
        lambda: all(workers.running.get(key) not in (None, victim) for key in moved), ttl + 2, "keys moved"
    )
    assert took <= ttl + 1.0, took
    assert workers.overlaps == 0


async def test_a_crashed_holders_keys_move_as_their_lease_expires_not_at_the_next_poll(
    start_node: NodeFactory, wait_until: WaitUntil, nursery: trio.Nursery, etcd: EtcdClient, prefix: str
) -> None:
    """The survivors watch the keys: with a poll interval far above the TTL, a key still moves within a
    fraction of a second of the moment etcd expires the dead holder's lease (seen by a watch of our own)."""
    ttl = 2.0
    workers = Workers()
    nodes = [await start_node(f"node-{n}", ttl=ttl) for n in "ab"]
    scopes = {}
    for node in nodes:
        singletons = LeasedSingletons(
            node.coord, "sites", wanted, partial(workers.work, node.coord.node_id), interval=60.0
        )
        scopes[node.coord.node_id] = trio.CancelScope()
        nursery.start_soon(_run_in, scopes[node.coord.node_id], singletons)
    await wait_until(lambda: len(workers.running) == len(KEYS), 5, "every key taken")
    victim = workers.running[KEYS[0]]
    expired: list[float] = []

    async def see_expiry(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with etcd.watch(f"{prefix}singletons/sites/{KEYS[0]}") as events:
            task_status.started()
            async for event in events:
                if event.type == "DELETE":
                    expired.append(trio.current_time())
                    return

    await nursery.start(see_expiry)
    next(n for n in nodes if n.coord.node_id == victim).crash()
    scopes[victim].cancel()
    await wait_until(lambda: workers.running.get(KEYS[0]) not in (None, victim), ttl + 3, "key moved")
    moved = trio.current_time()
    assert expired, "the key moved before etcd expired its holder's lease"
    assert moved - expired[0] <= 1.0, moved - expired[0]  # the poll interval is 60 s
    assert workers.overlaps == 0


async def _run_in(scope: trio.CancelScope, singletons: LeasedSingletons) -> None:
    """The node's singletons, stopped with it when it crashes."""
    with scope:
        await singletons.run()


async def test_a_released_key_is_taken_at_once_through_the_watch_not_the_next_poll(
    start_node: NodeFactory, wait_until: WaitUntil
) -> None:
    """With a poll interval far longer than the test, node-b can only learn of node-a's drain from the watch."""
    workers = Workers()
    a = await start_node("node-a", ttl=5.0)
    b = await start_node("node-b", ttl=5.0)
    async with trio.open_nursery() as nursery:
        await _takeover(a, b, workers, wait_until, nursery)
        nursery.cancel_scope.cancel()


async def _takeover(a: Any, b: Any, workers: Workers, wait_until: WaitUntil, nursery: trio.Nursery) -> None:
    first = LeasedSingletons(a.coord, "sites", wanted, partial(workers.work, "node-a"), interval=60.0)
    await nursery.start(first.run)
    await wait_until(lambda: len(workers.running) == len(KEYS), 5, "node-a holds every key")
    polled = trio.Event()
    hold_keys = b.coord.hold_keys

    async def hold_keys_and_tell(group: str, names: Any) -> set[str]:
        held = await hold_keys(group, names)
        polled.set()
        return held

    b.coord.hold_keys = hold_keys_and_tell  # type: ignore[method-assign]
    second = LeasedSingletons(b.coord, "sites", wanted, partial(workers.work, "node-b"), interval=60.0)
    await nursery.start(second.run)
    with trio.fail_after(5):
        await polled.wait()  # node-b's first poll found every key held; its next one is a minute away
    assert second.held == []
    await a.coord.drain()  # revokes node-a's lease: its keys go at once
    took = await wait_until(lambda: set(workers.running.values()) == {"node-b"}, 5, "node-b took every key")
    assert took < 5.0 and len(workers.running) == len(KEYS)


async def test_an_exclusive_job_runs_on_one_node_and_moves_at_once_when_its_holder_leaves(
    start_node: NodeFactory, wait_until: WaitUntil
) -> None:
    """The holder stops its job and drains (as a replica shuts down): the other node, watching the key, takes the
    job over at once, long before its next poll."""
    workers = Workers()
    nodes = [await start_node(f"node-{n}", ttl=5.0) for n in "ab"]
    scopes = {node.coord.node_id: trio.CancelScope() for node in nodes}

    async def run_job(node: Any) -> None:
        with scopes[node.coord.node_id]:
            job = partial(workers.work, node.coord.node_id, "export")
            await LeasedSingletons.exclusive(node.coord, "export", job, interval=60.0)

    async with trio.open_nursery() as nursery:
        for node in nodes:
            nursery.start_soon(run_job, node)
        await wait_until(lambda: "export" in workers.running, 5, "the job started")
        holder = next(n for n in nodes if n.coord.node_id == workers.running["export"])
        other = next(n for n in nodes if n is not holder)
        scopes[holder.coord.node_id].cancel()
        await holder.coord.drain()
        await wait_until(lambda: workers.running.get("export") == other.coord.node_id, 3, "the job moved")
        nursery.cancel_scope.cancel()
    assert workers.overlaps == 0


async def test_two_exclusive_jobs_on_one_node_keep_their_keys(start_node: NodeFactory, wait_until: WaitUntil) -> None:
    """Two sinks (NATS and webhook) are two exclusive jobs on every replica. Each one's poll must not give up the
    other's key as "no longer named": that let another node take a running exporter's key at once (two exporters
    of one sink at a time) and moved both sinks between the nodes on every poll."""
    workers = Workers()
    starts: Counter[tuple[str, str]] = Counter()
    nodes = [await start_node(f"node-{n}", ttl=5.0) for n in "ab"]
    polls = {node.coord.node_id: 0 for node in nodes}
    for node in nodes:
        hold_keys = node.coord.hold_keys

        async def counted(group: str, names: Any, hold: Any = hold_keys, node_id: str = node.coord.node_id) -> Any:
            polls[node_id] += 1
            return await hold(group, names)

        node.coord.hold_keys = counted

    async def job(node: Any, name: str) -> None:
        starts[node.coord.node_id, name] += 1
        await workers.work(node.coord.node_id, name)

    async with trio.open_nursery() as nursery:
        for node in nodes:
            for name in ("export-nats", "export-webhook"):
                nursery.start_soon(partial(LeasedSingletons.exclusive, node.coord, name, partial(job, node, name)))
        await wait_until(lambda: len(workers.running) == 2, 5, "both jobs started")
        seen = dict(polls)
        # Every node polls both jobs a few more times (interval 1 s; a watch-triggered poll counts too).
        await wait_until(lambda: all(polls[n] >= seen[n] + 6 for n in polls), 15, "more polls on every node")
        nursery.cancel_scope.cancel()
    assert workers.overlaps == 0
    assert sum(starts.values()) == 2, starts  # each job started once and never moved
