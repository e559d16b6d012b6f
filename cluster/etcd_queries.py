"""Read-mostly etcd queries of the coordinator: owners, nodes, per-node counts and singleton keys."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import trio

from cluster.contract import NodeInfo, Owner
from cluster.errors import EtcdCompacted, EtcdError
from cluster.etcd_client import EtcdClient
from cluster.etcd_keys import Keys, decode
from cluster.results import KeyValue, RangeResult
from cluster.txn import Compare, Op

log = logging.getLogger(__name__)

_OWNERS_PER_TXN = 100  # etcd's --max-txn-ops defaults to 128; one more op reads the node records
_COUNT_ON_LOOP = 1000


def _count_owners(owners: Sequence[KeyValue], counts: dict[str, int]) -> dict[str, int]:
    for kv in owners:
        node_id = str(decode(kv.value).get("node_id", ""))
        counts[node_id] = counts.get(node_id, 0) + 1
    return counts


class EtcdQueries:
    def __init__(self, etcd: EtcdClient, keys: Keys, node_id: str) -> None:
        self._etcd = etcd
        self._keys = keys
        self._node_id = node_id

    async def owners_of(self, station_ids: Sequence[str]) -> dict[str, Owner]:
        """Read-only txns of one get per station (chunked under etcd's default limit of 128 ops per txn) plus
        the node records for their addresses: one round trip for an API page instead of one per row."""
        wanted = sorted(set(station_ids))
        found: dict[str, Owner] = {}
        for start in range(0, len(wanted), _OWNERS_PER_TXN):
            chunk = wanted[start : start + _OWNERS_PER_TXN]
            ops = [Op.get(self._keys.owner(station_id)) for station_id in chunk]
            result = await self._etcd.txn([], [*ops, Op.get(self._keys.nodes, prefix=True)])
            *owners, nodes = result.responses
            assert isinstance(nodes, RangeResult)
            addresses = {self._keys.node_of(kv.key): str(decode(kv.value).get("address", "")) for kv in nodes.kvs}
            for station_id, owner_range in zip(chunk, owners, strict=True):
                assert isinstance(owner_range, RangeResult)
                kv = owner_range.first()
                if kv is not None:
                    owner = decode(kv.value)
                    node_id = str(owner.get("node_id", ""))
                    connection_id = str(owner.get("connection_id", ""))
                    found[station_id] = Owner(station_id, node_id, connection_id, addresses.get(node_id, ""))
        return found

    async def nodes(self) -> list[NodeInfo]:
        result = await self._etcd.get(self._keys.nodes, prefix=True)
        return [self._node_info(kv) for kv in result.kvs]

    def _node_info(self, kv: KeyValue) -> NodeInfo:
        info = decode(kv.value)
        started = info.get("started_at", 0.0)
        return NodeInfo(
            node_id=self._keys.node_of(kv.key),
            address=str(info.get("address", "")),
            version=str(info.get("version", "")),
            started_at=float(started) if isinstance(started, int | float) else 0.0,
        )

    async def owned_counts(self) -> dict[str, int]:
        """Stations owned per live node (live nodes owning nothing appear with 0)."""
        result = await self._etcd.txn(
            [], [Op.get(self._keys.nodes, prefix=True), Op.get(self._keys.owners, prefix=True)]
        )
        nodes, owners = result.responses
        assert isinstance(nodes, RangeResult) and isinstance(owners, RangeResult)
        counts = {self._node_info(kv).node_id: 0 for kv in nodes.kvs}
        if len(owners.kvs) < _COUNT_ON_LOOP:
            return _count_owners(owners.kvs, counts)
        # Every station's owner record (~1 µs each to decode): not on the event loop the stations share.
        return await trio.to_thread.run_sync(_count_owners, owners.kvs, counts)

    async def key_holders(self, group: str) -> dict[str, str]:
        prefix = self._keys.singletons(group)
        result = await self._etcd.get(prefix, prefix=True)
        return {kv.key[len(prefix) :].decode(errors="replace"): kv.value.decode(errors="replace") for kv in result.kvs}

    async def hold_keys(self, group: str, names: Sequence[str], lease: int) -> set[str]:
        """One range read, then a create-if-absent txn per free key (rare: only after a holder left)."""
        prefix = self._keys.singletons(group)
        wanted = set(names)
        present = {
            kv.key[len(prefix) :].decode(errors="replace"): kv for kv in (await self._etcd.get(prefix, prefix=True)).kvs
        }
        held = {name for name, kv in present.items() if kv.lease == lease and name in wanted}
        for name in sorted(wanted - present.keys()):
            key = prefix + name
            taken = await self._etcd.txn(
                [Compare.create_revision(key, "=", 0)], [Op.put(key, self._node_id, lease=lease)]
            )
            if taken.succeeded:
                held.add(name)
        for name, kv in present.items():
            if kv.lease == lease and name not in wanted:
                await self._etcd.txn([Compare.lease(prefix + name, "=", lease)], [Op.delete(prefix + name)])
        return held

    async def watch_released(self, group: str, released: Callable[[], None]) -> None:
        """Call ``released()`` whenever a key of ``group`` is deleted (its holder left), until cancelled."""
        while True:
            try:
                async with self._etcd.watch(self._keys.singletons(group), prefix=True) as events:
                    async for event in events:
                        if event.type == "DELETE":
                            released()
            except EtcdCompacted:
                released()  # events were missed: let the caller look
            except EtcdError as exc:
                log.debug("singletons %s watch: %r", group, exc)
            await trio.sleep(0.2)
