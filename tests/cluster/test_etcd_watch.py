"""Streaming watch against a real etcd: ordering, history, reconnect across an etcd restart, compaction."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from cluster import EtcdClient, EtcdCompacted, WatchEvent
from cluster.watch import Watch
from devcluster.etcd import EtcdServer


async def take(events: Watch, n: int, within: float = 5.0) -> list[WatchEvent]:
    got: list[WatchEvent] = []
    with trio.fail_after(within):
        async for event in events:
            got.append(event)
            if len(got) == n:
                break
    return got


async def test_watch_prefix_sees_puts_and_deletes_in_order(etcd: EtcdClient, prefix: str) -> None:
    await etcd.put(prefix + "before", "ignored")  # older than the watch: not replayed
    async with etcd.watch(prefix, prefix=True, prev_kv=True) as events:
        await etcd.put(prefix + "a", "1")
        await etcd.put(prefix + "a", "2")
        await etcd.put(prefix.rstrip("/") + "-sibling", "outside the prefix")
        deleted = await etcd.delete(prefix + "a")
        got = await take(events, 3)
    assert [(e.type, e.kv.key, e.kv.value) for e in got] == [
        ("PUT", (prefix + "a").encode(), b"1"),
        ("PUT", (prefix + "a").encode(), b"2"),
        ("DELETE", (prefix + "a").encode(), b""),
    ]
    assert got[1].prev_kv is not None and got[1].prev_kv.value == b"1"
    assert got[2].kv.mod_revision == deleted.revision


async def test_watch_from_start_revision_replays_history(etcd: EtcdClient, prefix: str) -> None:
    first = await etcd.put(prefix + "k", "1")
    await etcd.put(prefix + "k", "2")
    async with etcd.watch(prefix + "k", start_revision=first.revision) as events:
        got = await take(events, 2)
    assert [e.kv.value for e in got] == [b"1", b"2"]


async def test_watch_resumes_after_etcd_restart_without_gaps(private_etcd: EtcdServer) -> None:
    url = private_etcd.start()
    async with EtcdClient([url], timeout=1.0) as etcd, etcd.watch("/w/", prefix=True) as events:
        await etcd.put("/w/1", "before restart")
        assert [e.kv.value for e in await take(events, 1)] == [b"before restart"]

        private_etcd.kill()
        async with trio.open_nursery() as nursery:
            # The consumer is blocked in the iterator while etcd is down and comes back.
            received: list[WatchEvent] = []

            async def consume() -> None:
                received.extend(await take(events, 2, within=15))

            nursery.start_soon(consume)
            await trio.testing.wait_all_tasks_blocked()  # the consumer is inside the iterator, etcd still down
            await trio.to_thread.run_sync(private_etcd.start)
            async with EtcdClient([url], timeout=2.0) as writer:
                await writer.put("/w/2", "after restart")
                await writer.put("/w/3", "and more")
        assert [e.kv.value for e in received] == [b"after restart", b"and more"]
        assert events.reconnects >= 1


async def test_compaction_is_surfaced(etcd: EtcdClient, prefix: str) -> None:
    first = await etcd.put(prefix + "c", "1")
    latest = await etcd.put(prefix + "c", "2")
    await etcd.compact(latest.revision)
    with pytest.raises(EtcdCompacted) as info:
        async with etcd.watch(prefix + "c", start_revision=first.revision) as events:
            await take(events, 1)
    assert info.value.compact_revision >= latest.revision
