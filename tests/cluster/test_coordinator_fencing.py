"""Lease loss: etcd unreachable for longer than the lease TTL, then back (real etcd, SIGSTOP/SIGCONT).

The node gives up membership and leadership before etcd can expire its lease, but keeps the stations it holds
(Postgres fences their writes) and claims them again under a new lease when etcd is back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
import trio

from cluster import EtcdClient, EtcdUnavailable
from devcluster.etcd import EtcdServer

NodeFactory = Callable[..., Awaitable[Any]]
WaitUntil = Callable[..., Awaitable[float]]


async def test_node_gives_up_its_lease_in_time_keeps_its_claims_and_reclaims_them(
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
        await wait_until(lambda: a.fenced != [], ttl + 1, "lease given up")
        # Given up strictly before etcd could have expired the lease (TTL after the last renewal).
        assert a.fenced[0] - paused_at < ttl
        assert not a.coord.healthy and not a.coord.is_leader
        assert a.coord.held_claims == {"CP1": claim}  # still served: no claim is lost by an outage alone
        assert a.lost == []
        with pytest.raises(EtcdUnavailable):  # but no new station until etcd is back (after REJOIN_WAIT)
            await a.coord.claim("CP2", "conn-2")
        await trio.sleep(max(0.0, ttl + 0.5 - (trio.current_time() - paused_at)))
    finally:
        private_etcd.resume()

    took = await wait_until(lambda: a.coord.healthy, 5, "rejoined after etcd came back")
    assert took < 3
    assert a.coord.lease_id not in (None, old_lease)
    assert len(a.fenced) == 1
    await wait_until(lambda: a.coord.held_claims["CP1"].revision > claim.revision, 3, "CP1 claimed again")
    assert a.lost == []
    await wait_until(lambda: a.coord.is_leader, 3, "leads again")

    async with EtcdClient([url]) as etcd:
        owner = (await etcd.get(prefix + "owners/CP1")).first()
        assert owner is not None and owner.lease == a.coord.lease_id
        assert orjson.loads(owner.value) == {"node_id": "node-a", "connection_id": "conn-1"}
        nodes = await etcd.get(prefix + "nodes/", prefix=True)
        assert [kv.lease for kv in nodes.kvs] == [a.coord.lease_id]
    again = await a.coord.claim("CP1", "conn-3")
    assert again.revision > a.coord.held_claims["CP1"].revision - 1 and a.lost[-1].connection_id == "conn-1"
    await a.coord.release(again)
    async with EtcdClient([url]) as etcd:
        assert (await etcd.get(prefix + "owners/CP1")).first() is None


async def test_a_station_claimed_elsewhere_while_the_lease_was_lost_is_lost_on_rejoin(
    start_node: NodeFactory, wait_until: WaitUntil, etcd: EtcdClient, prefix: str
) -> None:
    a = await start_node("node-a", ttl=5.0)
    b = await start_node("node-b", ttl=5.0)
    kept = await a.coord.claim("CP1", "conn-1")
    taken = await a.coord.claim("CP2", "conn-2")
    lease = a.coord.lease_id
    assert lease is not None
    await etcd.lease_revoke(lease)  # e.g. an operator, or etcd restored from an old snapshot: our keys are gone
    await b.coord.claim("CP2", "conn-b")  # and another node claims one of our stations meanwhile
    await wait_until(lambda: a.fenced != [], 3, "lease loss noticed")
    await wait_until(lambda: a.coord.healthy, 3, "rejoined")
    assert a.coord.lease_id != lease
    await wait_until(lambda: a.lost == [taken], 3, "CP2 lost to node-b")
    await wait_until(lambda: a.coord.held_claims.get("CP1", kept).revision > kept.revision, 3, "CP1 re-claimed")
    assert set(a.coord.held_claims) == {"CP1"}
    stored = (await etcd.get(prefix + "owners/CP2")).first()
    assert stored is not None and orjson.loads(stored.value)["node_id"] == "node-b"


async def test_a_claim_landing_right_after_a_reclaim_is_not_missed(
    start_node: NodeFactory, wait_until: WaitUntil, etcd: EtcdClient, prefix: str
) -> None:
    """Another node's claim that lands just after our re-claim, and reaches our watch before the re-claim has
    recorded its result (the watch then has no claim of ours to compare it with), still loses us the station."""
    a = await start_node("node-a", ttl=5.0)
    kept = await a.coord.claim("CP1", "conn-1")
    key = prefix + "owners/CP1"
    other = orjson.dumps({"node_id": "node-b", "connection_id": "conn-b"})
    watched: list[int] = []
    seen_other = trio.Event()
    coord: Any = a.coord  # the hooks below interleave real etcd operations at the racy moment
    on_event, txn = coord._on_owner_event, coord._etcd.txn

    def watch_hook(event: Any) -> None:
        on_event(event)
        watched.append(event.kv.mod_revision)
        if event.kv.value == other:
            seen_other.set()

    async def txn_hook(*args: Any, **kwargs: Any) -> Any:
        result = await txn(*args, **kwargs)
        guards_cp1 = any(c.key in (key, key.encode()) for c in args[0])
        if result.succeeded and guards_cp1 and coord.lease_id != lease and not seen_other.is_set():
            await etcd.put(key, other)  # node-b claims the station right after our re-claim landed
            with trio.fail_after(5):
                await seen_other.wait()  # and our watch has passed that event before the re-claim resumes
        return result

    coord._on_owner_event, coord._etcd.txn = watch_hook, txn_hook
    lease = a.coord.lease_id
    await etcd.lease_revoke(lease)  # our keys are gone: CP1 becomes an orphan, re-claimed on rejoin
    await wait_until(lambda: seen_other.is_set(), 5, "re-claim raced by node-b")
    await wait_until(lambda: a.lost == [kept], 3, "CP1 lost to node-b")
    assert "CP1" not in a.coord.held_claims
