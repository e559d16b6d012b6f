"""Leader election: create-if-absent on the leased ``leader`` key; followers watch it and campaign on delete."""

from __future__ import annotations

import logging

import trio

from cluster.callbacks import Flag, Hooks
from cluster.errors import EtcdError
from cluster.etcd_client import EtcdClient
from cluster.observer import ClusterObserver
from cluster.results import RangeResult
from cluster.txn import Compare, Op

log = logging.getLogger(__name__)


class Election:
    def __init__(self, etcd: EtcdClient, key: str, node_id: str, observer: ClusterObserver) -> None:
        self._etcd = etcd
        self._key = key
        self._node_id = node_id
        self._observer = observer
        self.flag = Flag(False)
        self.leader_id: str | None = None
        self.hooks: Hooks[bool] = Hooks()
        self.resigned = False  # draining: never leader again

    def set_leader(self, leader_id: str | None) -> None:
        self.leader_id = leader_id
        mine = leader_id is not None and leader_id == self._node_id and not self.resigned
        if self.flag.set(mine):
            log.info("node %s leadership: %s", self._node_id, mine)
            self._observer.leader(mine)
            self.hooks.fire(mine)

    async def campaign(self, lease: int, ttl: float) -> None:
        """Until cancelled: take the key if free, else follow its holder; re-check every ``ttl``."""
        key = self._key
        while True:
            try:
                result = await self._etcd.txn(
                    [Compare.create_revision(key, "=", 0)],
                    [Op.put(key, self._node_id, lease=lease)],
                    [Op.get(key)],
                )
            except EtcdError as exc:
                log.debug("election: %r", exc)
                await trio.sleep(0.2)
                continue
            if result.succeeded:
                self.set_leader(self._node_id)
            else:
                current = result.responses[0]
                assert isinstance(current, RangeResult)
                kv = current.first()
                if kv is None:
                    continue
                holder = kv.value.decode(errors="replace")
                self.set_leader(holder if (holder != self._node_id or kv.lease == lease) else None)
            if await self._watch_until_gone(result.revision + 1, ttl):
                self.set_leader(None)
            # else: the periodic re-check; the next txn re-confirms the holder without a leaderless blip

    async def _watch_until_gone(self, start_revision: int, ttl: float) -> bool:
        """True once the leader key is deleted; False after one TTL (a hung stream must not keep us leaderless)."""
        with trio.move_on_after(ttl):
            try:
                async with self._etcd.watch(self._key, start_revision=start_revision) as events:
                    async for event in events:
                        if event.type == "DELETE":
                            return True
                        self.set_leader(event.kv.value.decode(errors="replace"))
            except EtcdError as exc:
                log.debug("leader watch: %r", exc)
                await trio.sleep(0.2)
        return False

    async def resign(self, lease: int) -> None:
        """Delete the leader key if we hold it under ``lease`` (a clean exit: no TTL of leaderlessness)."""
        await self._etcd.txn(
            [Compare.value(self._key, "=", self._node_id), Compare.lease(self._key, "=", lease)],
            [Op.delete(self._key)],
        )
