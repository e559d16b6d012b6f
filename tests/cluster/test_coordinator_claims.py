"""Two EtcdCoordinators on one real etcd: ownership, takeover, release, lease expiry, drain."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
import trio

from cluster import ClaimSuperseded, EtcdClient, EtcdUnavailable

NodeFactory = Callable[..., Awaitable[Any]]
WaitUntil = Callable[..., Awaitable[float]]


async def test_newest_claim_wins_and_old_owner_is_told(
    start_node: NodeFactory, etcd: EtcdClient, prefix: str, wait_until: WaitUntil
) -> None:
    a = await start_node("node-a")
    b = await start_node("node-b")

    claim_a = await a.coord.claim("CP1", "conn-a")
    owner = await b.coord.owner_of("CP1")
    assert owner is not None and (owner.node_id, owner.connection_id) == ("node-a", "conn-a")
    assert owner.address == "http://127.0.0.1:1/node-a"

    claim_b = await b.coord.claim("CP1", "conn-b")
    assert claim_b.revision > claim_a.revision
    await wait_until(lambda: a.lost == [claim_a], 3, "node-a told it lost CP1")
    assert b.lost == []
    assert "CP1" not in a.coord.held_claims and "CP1" in b.coord.held_claims

    stored = (await etcd.get(prefix + "owners/CP1")).first()
    assert stored is not None and stored.mod_revision == claim_b.revision
    assert orjson.loads(stored.value) == {"node_id": "node-b", "connection_id": "conn-b"}
    assert stored.lease == b.coord.lease_id

    # The loser's compare-and-delete must not remove the winner's key.
    await a.coord.release(claim_a)
    assert (await etcd.get(prefix + "owners/CP1")).first() is not None
    await b.coord.release(claim_b)
    assert (await etcd.get(prefix + "owners/CP1")).first() is None
    assert await a.coord.owner_of("CP1") is None


async def test_same_node_reconnect_supersedes_older_connection(start_node: NodeFactory, wait_until: WaitUntil) -> None:
    a = await start_node("node-a")
    b = await start_node("node-b")
    probe = await a.coord.claim("PROBE", "conn")
    first = await a.coord.claim("CP2", "conn-1")
    second = await a.coord.claim("CP2", "conn-2")
    assert second.revision > first.revision
    # The watch delivers events in revision order: once it has told node-a of a later takeover (the probe),
    # it has delivered our own second write too, and that caused no second notification.
    await b.coord.claim("PROBE", "conn-b")
    await wait_until(lambda: probe in a.lost, 3, "the watch delivered the probe's takeover")
    assert a.lost == [first, probe]
    assert a.coord.held_claims["CP2"] == second


async def test_concurrent_claims_leave_exactly_one_owner(
    start_node: NodeFactory, etcd: EtcdClient, prefix: str, wait_until: WaitUntil
) -> None:
    a = await start_node("node-a")
    b = await start_node("node-b")
    results: dict[str, object] = {}

    async def claim(node_name: str, coord_claim: object) -> None:
        try:
            results[node_name] = await coord_claim("CP3", f"conn-{node_name}")  # type: ignore[operator]
        except ClaimSuperseded as exc:
            results[node_name] = exc

    for _ in range(5):
        results.clear()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(claim, "a", a.coord.claim)
            nursery.start_soon(claim, "b", b.coord.claim)
        stored = (await etcd.get(prefix + "owners/CP3")).first()
        assert stored is not None
        winner = orjson.loads(stored.value)["node_id"]

        def holders() -> list[str]:
            return [n for n, node in (("node-a", a), ("node-b", b)) if "CP3" in node.coord.held_claims]

        # The loser may learn from the watch a moment later: wait for that, then exactly the winner holds it.
        await wait_until(lambda w=winner: holders() == [w], 3, f"only {winner} holds CP3 ({results})")


async def test_owners_vanish_when_a_node_stops_renewing(start_node: NodeFactory, etcd: EtcdClient, prefix: str) -> None:
    a = await start_node("node-a", ttl=2.0)
    b = await start_node("node-b", ttl=2.0)
    await a.coord.claim("CP4", "conn")
    await a.coord.claim("CP5", "conn")
    assert await b.coord.owned_counts() == {"node-a": 2, "node-b": 0}
    assert {n.node_id for n in await b.coord.nodes()} == {"node-a", "node-b"}

    a.crash()

    async def gone() -> bool:
        return (await etcd.get(prefix + "owners/", prefix=True, count_only=True)).count == 0

    started = trio.current_time()
    with trio.fail_after(4.0):
        while not await gone():
            await trio.sleep(0.1)
    assert trio.current_time() - started <= 3.0  # TTL 2 s (+ etcd's expiry sweep)
    assert await b.coord.owned_counts() == {"node-b": 0}
    assert [n.node_id for n in await b.coord.nodes()] == ["node-b"]


async def test_drain_revokes_the_lease_at_once(start_node: NodeFactory, etcd: EtcdClient, prefix: str) -> None:
    a = await start_node("node-a", ttl=10.0)
    await a.coord.claim("CP6", "conn")
    await a.coord.drain()
    assert not a.coord.healthy and not a.coord.is_leader and a.fenced == [] and a.lost == []
    left = await etcd.get(prefix, prefix=True)
    assert [kv.key.decode() for kv in left.kvs] == [prefix + "fence-domain"]  # only the lease-free domain name
    with pytest.raises(EtcdUnavailable):
        await a.coord.claim("CP6", "conn-2")


async def test_owners_of_reads_a_whole_page_across_txn_chunks(start_node: NodeFactory) -> None:
    a = await start_node("node-a")
    b = await start_node("node-b")
    ids = [f"PAGE-{n:03d}" for n in range(230)]  # more than two txn chunks
    async with trio.open_nursery() as nursery:
        for n, station_id in enumerate(ids[:200]):
            node = a if n % 2 == 0 else b
            nursery.start_soon(node.coord.claim, station_id, f"conn-{n}")
    owners = await b.coord.owners_of([*ids, "NOT-THERE"])
    assert set(owners) == set(ids[:200])
    assert owners["PAGE-000"].node_id == "node-a" and owners["PAGE-000"].address == "http://127.0.0.1:1/node-a"
    assert owners["PAGE-199"].node_id == "node-b" and owners["PAGE-199"].connection_id == "conn-199"
    assert owners == {i: o for i in ids if (o := await a.coord.owner_of(i)) is not None}
    assert await a.coord.owners_of([]) == {}


async def test_a_claim_storm_queues_a_bounded_number_of_puts(start_node: NodeFactory, etcd: EtcdClient) -> None:
    """1,000 claims at once: at most 4 batches' worth of owner puts are queued or in flight (the rest wait for
    room), and every claim still lands."""
    a = await start_node("node-a")
    peak = 0

    async def watch_queue(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal peak
        task_status.started()
        while True:
            peak = max(peak, a.coord.queued_claims)
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as watcher:
        await watcher.start(watch_queue)
        async with trio.open_nursery() as nursery:
            for n in range(1000):
                nursery.start_soon(a.coord.claim, f"STORM-{n}", "conn")
        watcher.cancel_scope.cancel()
    assert len(a.coord.held_claims) == 1000
    assert 0 < peak <= 4 * 64


async def test_taking_over_a_dead_nodes_stations_costs_one_txn_per_batch(
    start_node: NodeFactory, wait_until: WaitUntil
) -> None:
    """A reconnect storm after a replica died is all takeovers of keys its lease still holds. The survivor knows
    each key's revision (read at join, kept by its watch), so its first guarded put already lands: one owner
    txn per batch, not a failed create-if-absent batch and a retry for every batch."""
    stations = [f"TAKE-{n}" for n in range(200)]
    a = await start_node("node-a", ttl=30.0, call_timeout=10.0)  # etcd on a loaded machine may be slow
    async with trio.open_nursery() as nursery:
        for station_id in stations:
            nursery.start_soon(a.coord.claim, station_id, "old")
    a.crash()  # its owner keys stay until its lease expires
    b = await start_node("node-b", ttl=10.0, call_timeout=10.0)
    await wait_until(lambda: len(b.coord._claims._owner_hints) == len(stations), 10, "node-b read the owner keys")
    txns = 0
    send = b.coord._etcd.txn

    async def counting_txn(*args: Any, **kwargs: Any) -> Any:
        nonlocal txns
        txns += 1
        return await send(*args, **kwargs)

    b.coord._etcd.txn = counting_txn  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        for station_id in stations:
            nursery.start_soon(b.coord.claim, station_id, "new")
    assert set(b.coord.held_claims) == set(stations)
    assert all(claim.connection_id == "new" for claim in b.coord.held_claims.values())
    assert txns <= -(-len(stations) // 64) + 1, f"{txns} owner txns for {len(stations)} takeovers"


def _count_txns(node: Any) -> list[bool]:
    """Record whether each etcd txn of ``node`` succeeded, from now on."""
    outcomes: list[bool] = []
    send = node.coord._etcd.txn

    async def counting_txn(*args: Any, **kwargs: Any) -> Any:
        result = await send(*args, **kwargs)
        outcomes.append(result.succeeded)
        return result

    node.coord._etcd.txn = counting_txn
    return outcomes


async def test_a_release_storm_costs_one_txn_per_batch(start_node: NodeFactory, etcd: EtcdClient, prefix: str) -> None:
    """200 connections closing at once: their guarded owner-key deletes ride in batches, not one txn each (a
    burst of single deletes once left etcd refusing connections)."""
    a = await start_node("node-a", ttl=30.0, call_timeout=10.0)
    claims = []

    async def claim(station_id: str) -> None:
        claims.append(await a.coord.claim(station_id, "conn"))

    async with trio.open_nursery() as nursery:
        for n in range(200):
            nursery.start_soon(claim, f"GONE-{n}")
    txns = _count_txns(a)
    async with trio.open_nursery() as nursery:
        for released in claims:
            nursery.start_soon(a.coord.release, released)
    assert (await etcd.get(prefix + "owners/GONE-", prefix=True)).kvs == []
    assert a.coord.held_claims == {}
    assert len(txns) <= -(-200 // 64) + 2, f"{len(txns)} txns for 200 releases"


async def test_a_release_whose_key_moved_on_holds_back_no_other(
    start_node: NodeFactory, etcd: EtcdClient, prefix: str
) -> None:
    """One key in a release batch no longer has our claim's revision: its guard fails the batch's txn, the
    innocent keys are deleted by the next one, and the moved key is left alone."""
    a = await start_node("node-a", ttl=30.0, call_timeout=10.0)
    claims = [await a.coord.claim(f"MIX-{n}", "conn") for n in range(30)]
    moved = claims[0]
    # Same value, new revision: the watch sees our own node and connection, so node-a keeps its (now stale) claim.
    await etcd.put(prefix + "owners/MIX-0", orjson.dumps({"node_id": "node-a", "connection_id": "conn"}))
    txns = _count_txns(a)
    async with trio.open_nursery() as nursery:
        for released in [moved, *claims[1:]]:
            nursery.start_soon(a.coord.release, released)
    left = (await etcd.get(prefix + "owners/MIX-", prefix=True)).kvs
    assert [kv.key for kv in left] == [(prefix + "owners/MIX-0").encode()]
    assert False in txns, "the moved key's guard never failed a batch"
    assert len(txns) <= 6, f"{len(txns)} txns for 30 releases"


async def test_a_claim_that_finds_its_lease_gone_rejoins_and_claims(
    start_node: NodeFactory, etcd: EtcdClient, prefix: str
) -> None:
    """etcd rebuilt from empty (or the lease expired before the keep-alive noticed): the claim's txn names a lease
    etcd no longer has. The node rejoins at once and the claim lands under the new lease; it used to fail (and
    the station was refused) until the next keep-alive noticed."""
    a = await start_node("node-a")
    old = a.coord.lease_id
    assert old is not None
    await etcd.lease_revoke(old)
    claim = await a.coord.claim("CP-GONE", "conn-1")
    assert a.coord.lease_id not in (None, old)
    stored = (await etcd.get(prefix + "owners/CP-GONE")).first()
    assert stored is not None and stored.lease == a.coord.lease_id and stored.mod_revision == claim.revision
