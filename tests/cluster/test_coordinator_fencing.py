"""Self-fencing: etcd unreachable for longer than the lease TTL, then back (real etcd, SIGSTOP/SIGCONT)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from cluster import EtcdClient, EtcdUnavailable
from csms.devtools.etcd import EtcdServer

NodeFactory = Callable[..., Awaitable[Any]]
WaitUntil = Callable[..., Awaitable[float]]


async def test_node_fences_itself_before_its_lease_can_expire_and_rejoins(
    private_etcd: EtcdServer, start_node: NodeFactory, wait_until: WaitUntil, prefix: str
) -> None:
    ttl = 2.0
    url = private_etcd.start()
    a = await start_node("node-a", ttl=ttl, endpoints=[url], call_timeout=0.5)
    await wait_until(lambda: a.coord.is_leader, 3, "a leads")
    claim = await a.coord.claim("CP1", "conn-1")
    old_lease = a.coord.lease_id

    paused_at = trio.current_time()
    private_etcd.pause()
    try:
        await wait_until(lambda: a.fenced != [], ttl + 1, "fenced")
        # Fenced strictly before etcd could have expired the lease (TTL after the last renewal).
        assert a.fenced[0] - paused_at < ttl
        assert not a.coord.healthy and not a.coord.is_leader and a.coord.held_claims == {}
        assert a.lost == []  # on_fenced covers every station; no per-claim noise
        with pytest.raises(EtcdUnavailable):
            await a.coord.claim("CP2", "conn-2")
        await trio.sleep(ttl + 0.5 - (trio.current_time() - paused_at))
    finally:
        private_etcd.resume()

    took = await wait_until(lambda: a.coord.healthy, 5, "rejoined after etcd came back")
    assert took < 3
    assert a.coord.lease_id not in (None, old_lease)
    assert len(a.fenced) == 1
    await wait_until(lambda: a.coord.is_leader, 3, "leads again")

    async with EtcdClient([url]) as etcd:
        stale = (await etcd.get(prefix + "owners/CP1")).first()
        assert stale is None  # the old claim went with the old lease
        nodes = await etcd.get(prefix + "nodes/", prefix=True)
        assert [kv.lease for kv in nodes.kvs] == [a.coord.lease_id]
    again = await a.coord.claim("CP1", "conn-3")
    assert again.token > claim.token


async def test_lease_lost_while_healthy_fences_at_once(
    start_node: NodeFactory, wait_until: WaitUntil, etcd: EtcdClient
) -> None:
    a = await start_node("node-a", ttl=5.0)
    await a.coord.claim("CP1", "conn-1")
    lease = a.coord.lease_id
    assert lease is not None
    await etcd.lease_revoke(lease)  # e.g. an operator, or etcd restored from an old snapshot
    await wait_until(lambda: a.fenced != [], 3, "fenced on lease-not-found")
    await wait_until(lambda: a.coord.healthy, 3, "rejoined")
    assert a.coord.lease_id != lease
