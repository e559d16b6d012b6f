"""The coordinator for a lone replica without etcd: same contract, all in process."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import trio

from cluster.callbacks import Flag, Hooks
from cluster.contract import Claim, EpochSource, NodeInfo, NoEpochs, Owner
from cluster.errors import EtcdUnavailable
from cluster.observer import ClusterObserver, NullObserver
from cluster.singletons import LeasedSingletons


class SingleNodeCoordinator:
    """Always leader, always healthy; the newest connection for a station still wins.

    Each process is its own coordinator domain: ``run()`` takes a fresh epoch from ``epochs`` (newer than any
    domain before it, a previous run or an etcd cluster on the same database), and claims are numbered by a
    counter inside it. So a restart, or a move from a cluster back to a single node, never meets a newer key.
    """

    def __init__(
        self,
        node_id: str,
        *,
        address: str = "",
        version: str = "",
        observer: ClusterObserver | None = None,
        epochs: EpochSource | None = None,
    ) -> None:
        self.node_id = node_id
        self._epochs: EpochSource = epochs or NoEpochs()
        self._epoch = 0
        self._info = NodeInfo(node_id=node_id, address=address, version=version, started_at=time.time())
        self._observer = observer or NullObserver()
        self._claims: dict[str, Claim] = {}
        self._last_revision = 0
        self._lost: Hooks[Claim] = Hooks()
        self._leader_hooks: Hooks[bool] = Hooks()
        self._leader = Flag(True)
        self._drained = False
        self._drained_event = trio.Event()
        self._singletons: dict[str, set[str]] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._epoch, _ = await self._epochs.fence_epoch(f"single:{self.node_id}:{uuid.uuid4().hex}")
        self._observer.lease_state("live")
        self._observer.leader(True)
        task_status.started()
        await self._drained_event.wait()  # like EtcdCoordinator.run: returns once drained

    async def claim(self, station_id: str, connection_id: str) -> Claim:
        await trio.lowlevel.checkpoint()
        if self._drained:
            raise EtcdUnavailable("coordinator drained: not accepting stations")
        started = time.perf_counter()
        self._last_revision += 1
        claim = Claim(station_id, connection_id, self._last_revision, self._epoch)
        old = self._claims.get(station_id)
        self._claims[station_id] = claim
        self._observer.claim_finished(time.perf_counter() - started, "created" if old is None else "takeover")
        if old is not None and old.connection_id != connection_id:
            self._observer.claim_lost(station_id)
            self._lost.fire(old)
        return claim

    async def release(self, claim: Claim) -> None:
        await trio.lowlevel.checkpoint()
        if self._claims.get(claim.station_id) == claim:
            del self._claims[claim.station_id]

    async def owner_of(self, station_id: str) -> Owner | None:
        await trio.lowlevel.checkpoint()
        claim = self._claims.get(station_id)
        if claim is None:
            return None
        return Owner(station_id, self.node_id, claim.connection_id, self._info.address)

    async def owners_of(self, station_ids: Sequence[str]) -> dict[str, Owner]:
        await trio.lowlevel.checkpoint()
        return {
            station_id: Owner(station_id, self.node_id, claim.connection_id, self._info.address)
            for station_id in station_ids
            if (claim := self._claims.get(station_id)) is not None
        }

    async def nodes(self) -> list[NodeInfo]:
        await trio.lowlevel.checkpoint()
        return [self._info]

    async def owned_counts(self) -> dict[str, int]:
        await trio.lowlevel.checkpoint()
        return {self.node_id: len(self._claims)}

    async def hold_keys(self, group: str, names: Sequence[str]) -> set[str]:
        await trio.lowlevel.checkpoint()
        self._singletons[group] = set() if self._drained else set(names)
        return set(self._singletons[group])

    async def key_holders(self, group: str) -> dict[str, str]:
        await trio.lowlevel.checkpoint()
        return dict.fromkeys(self._singletons.get(group, ()), self.node_id)

    def on_claim_lost(self, cb: Callable[[Claim], None]) -> None:
        self._lost.add(cb)

    def on_lease_lost(self, cb: Callable[[], None]) -> None:
        pass  # no lease to lose

    def on_leader_changed(self, cb: Callable[[bool], None]) -> None:
        self._leader_hooks.add(cb)

    @property
    def is_leader(self) -> bool:
        return self._leader.value

    @property
    def leader_id(self) -> str | None:
        return self.node_id if self._leader.value else None

    @property
    def healthy(self) -> bool:
        return not self._drained

    async def wait_leadership(self) -> None:
        await self._leader.wait_for(True)

    async def wait_leadership_lost(self) -> None:
        await self._leader.wait_for(False)

    async def watch_released(self, group: str, released: Callable[[], None]) -> None:
        await trio.sleep_forever()  # nobody else ever holds a key

    async def run_exclusive(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        """A lone node holds every exclusive job (through the same singletons as the etcd form)."""
        await LeasedSingletons.exclusive(self, name, job)

    async def drain(self) -> None:
        await trio.lowlevel.checkpoint()
        self._drained = True
        self._drained_event.set()
        self._claims.clear()
        if self._leader.set(False):
            self._observer.leader(False)
            self._leader_hooks.fire(False)
        self._observer.lease_state("drained")
