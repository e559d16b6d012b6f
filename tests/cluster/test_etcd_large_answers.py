"""A large etcd answer is parsed off the event loop, and reads the same as a small one.

Found at 19,000 stations on two replicas: the leader's rebalancing round read every owner key (6 MB of JSON)
and held its event loop ~200 ms every 10 s while parsing it, delaying every station's messages meanwhile.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from cluster import EtcdClient, Op
from cluster import etcd_queries as queries_module
from cluster.results import RangeResult

KEYS = 2000
VALUE = b"v" * 200  # ~2000 x 400 bytes of JSON: well over transport.OFF_LOOP_BYTES


async def _fill(etcd: EtcdClient, prefix: str) -> None:
    for start in range(0, KEYS, 100):
        await etcd.txn([], [Op.put(f"{prefix}k{i:05d}", VALUE) for i in range(start, start + 100)])


async def test_a_large_range_is_converted_in_a_worker_thread(
    etcd: EtcdClient, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fill(etcd, prefix)
    threads: list[threading.Thread] = []
    original = RangeResult.from_json

    def recording(body: dict[str, Any], **kwargs: Any) -> RangeResult:
        threads.append(threading.current_thread())
        return original(body, **kwargs)

    monkeypatch.setattr(RangeResult, "from_json", recording)
    everything = await etcd.get(prefix, prefix=True)
    one = await etcd.get(f"{prefix}k00007")

    assert len(everything.kvs) == KEYS and all(kv.value == VALUE for kv in everything.kvs)
    assert everything.kvs[-1].key == f"{prefix}k{KEYS - 1:05d}".encode()
    assert one.first() is not None and one.kvs[0].value == VALUE
    big, small = threads
    assert big is not threading.main_thread(), f"{KEYS} keys (~{KEYS * 400 // 1024} KiB) parsed on the loop"
    assert small is threading.main_thread()  # a small answer is not worth a thread hop


async def test_owned_counts_counted_off_the_loop_match(start_node: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    a = await start_node("node-a")
    b = await start_node("node-b")
    for station in ("CP1", "CP2", "CP3"):
        await a.coord.claim(station, "conn")
    await b.coord.claim("CP4", "conn")
    on_loop = await b.coord.owned_counts()
    monkeypatch.setattr(queries_module, "_COUNT_ON_LOOP", 1)
    assert await b.coord.owned_counts() == on_loop == {"node-a": 3, "node-b": 1}
