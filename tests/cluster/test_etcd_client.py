"""EtcdClient against a real etcd: KV, txn, leases, failover, deadlines, auth."""

from __future__ import annotations

import pytest
import trio

from cluster import Compare, EtcdClient, EtcdError, EtcdLeaseNotFound, EtcdUnavailable, Op
from cluster.results import PutResult, RangeResult
from devcluster.etcd import EtcdServer, free_port


async def test_put_get_delete_roundtrip(etcd: EtcdClient, prefix: str) -> None:
    first = await etcd.put(prefix + "a", "1")
    await etcd.put(prefix + "b", b"\x00\xff binary")
    second = await etcd.put(prefix + "a", "2", prev_kv=True)
    assert second.revision > first.revision
    assert second.prev_kv is not None and second.prev_kv.value == b"1"

    got = await etcd.get(prefix + "a")
    kv = got.first()
    assert kv is not None and kv.value == b"2" and kv.version == 2 and kv.mod_revision == second.revision

    everything = await etcd.get(prefix, prefix=True)
    assert [kv.key for kv in everything.kvs] == [(prefix + "a").encode(), (prefix + "b").encode()]
    assert everything.kvs[1].value == b"\x00\xff binary"

    keys = await etcd.get(prefix, prefix=True, keys_only=True, limit=1)
    assert len(keys.kvs) == 1 and keys.kvs[0].value == b"" and keys.more and keys.count == 2

    historic = await etcd.get(prefix + "a", revision=first.revision)
    assert historic.first() is not None and historic.kvs[0].value == b"1"

    deleted = await etcd.delete(prefix, prefix=True, prev_kv=True)
    assert deleted.deleted == 2 and {kv.value for kv in deleted.prev_kvs} == {b"2", b"\x00\xff binary"}
    assert (await etcd.get(prefix, prefix=True)).kvs == []


async def test_txn_create_if_absent_then_compare_mod_revision(etcd: EtcdClient, prefix: str) -> None:
    key = prefix + "owner"
    absent = Compare.create_revision(key, "=", 0)
    created = await etcd.txn([absent], [Op.put(key, "A")], [Op.get(key)])
    assert created.succeeded
    again = await etcd.txn([absent], [Op.put(key, "B")], [Op.get(key)])
    assert not again.succeeded
    current = again.responses[0]
    assert isinstance(current, RangeResult) and current.kvs[0].value == b"A"

    stale = await etcd.txn([Compare.mod_revision(key, "=", created.revision - 1)], [Op.put(key, "C")])
    assert not stale.succeeded
    fresh = await etcd.txn(
        [Compare.mod_revision(key, "=", created.revision), Compare.value(key, "=", "A")],
        [Op.put(key, "C", prev_kv=True)],
    )
    assert fresh.succeeded
    put = fresh.responses[0]
    assert isinstance(put, PutResult) and put.prev_kv is not None and put.prev_kv.value == b"A"
    assert put.revision == fresh.revision


async def test_lease_lifecycle(etcd: EtcdClient, prefix: str) -> None:
    lease = await etcd.lease_grant(5)
    assert lease.id > 0 and lease.ttl == 5
    await etcd.put(prefix + "leased", "x", lease=lease.id)
    ttl = await etcd.lease_time_to_live(lease.id, keys=True)
    assert 0 < ttl.ttl <= 5 and ttl.granted_ttl == 5 and ttl.keys == [(prefix + "leased").encode()]
    assert await etcd.lease_keepalive(lease.id) == 5

    await etcd.lease_revoke(lease.id)
    assert (await etcd.get(prefix + "leased")).kvs == []
    assert (await etcd.lease_time_to_live(lease.id)).ttl == -1
    with pytest.raises(EtcdLeaseNotFound):
        await etcd.lease_keepalive(lease.id)
    with pytest.raises(EtcdError):  # a put on a dead lease is refused, not silently unleased
        await etcd.put(prefix + "leased", "y", lease=lease.id)


async def test_failover_skips_a_dead_endpoint(etcd_url: str, prefix: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with EtcdClient([dead, etcd_url], timeout=2.0) as client:
        await client.put(prefix + "k", "v")
        assert (await client.get(prefix + "k")).kvs[0].value == b"v"
        status = await client.status()
        assert status["version"].startswith("3.")


async def test_all_endpoints_dead_is_unavailable_quickly() -> None:
    dead = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    async with EtcdClient(dead, timeout=2.0) as client:
        started = trio.current_time()
        with pytest.raises(EtcdUnavailable):
            await client.get("/x")
        assert trio.current_time() - started < 1.0


async def test_paused_etcd_hits_the_deadline_and_failover_uses_the_rest(
    private_etcd: EtcdServer, etcd_url: str, prefix: str
) -> None:
    private_etcd.start()
    private_etcd.pause()
    try:
        async with EtcdClient([private_etcd.client_url], timeout=0.5) as hung:
            started = trio.current_time()
            with pytest.raises(EtcdUnavailable):
                await hung.get("/x")
            assert 0.4 < trio.current_time() - started < 1.5
        # A black-hole endpoint first in the list only costs its share of the deadline.
        async with EtcdClient([private_etcd.client_url, etcd_url], timeout=1.0) as client:
            await client.get(prefix + "k")
            # ...and once a healthy endpoint answered, it is preferred.
            started = trio.current_time()
            await client.get(prefix + "k")
            assert trio.current_time() - started < 0.3
        async with EtcdClient([private_etcd.client_url], timeout=0.5) as hung:
            with trio.move_on_after(0.1) as scope:  # callers' own deadlines cancel calls too
                await hung.get("/x")
            assert scope.cancelled_caught
    finally:
        private_etcd.resume()


async def test_username_password_authentication(private_etcd: EtcdServer) -> None:
    url = private_etcd.start()
    async with EtcdClient([url]) as admin:
        for path, body in [
            ("/v3/auth/role/add", {"name": "root"}),
            ("/v3/auth/user/add", {"name": "root", "password": "s3cret"}),
            ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
            ("/v3/auth/enable", {}),
        ]:
            await admin._transport.post(path, body)
    async with EtcdClient([url]) as anonymous:
        with pytest.raises(EtcdError):
            await anonymous.put("/secured", "x")
    with pytest.raises(EtcdError):
        async with EtcdClient([url], username="root", password="wrong"):
            pass
    async with EtcdClient([url], username="root", password="s3cret") as client:
        await client.put("/secured", "x")
        assert (await client.get("/secured")).kvs[0].value == b"x"
        client._transport.token = "bogus-expired-token"  # an expired token is refreshed transparently
        assert (await client.get("/secured")).kvs[0].value == b"x"
