"""The coordination contract the CSMS programs against; etcd-backed and single-node forms implement it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import trio


@dataclass(frozen=True, slots=True)
class Claim:
    """Ownership of one station by one connection, ordered by its key (epoch, revision).

    ``revision`` orders claims inside one coordinator domain (an etcd revision, a lone node's counter); ``epoch``
    orders the domains themselves (see ``EpochSource``). The fence token that writes carry is derived from this
    key by whoever records it (Postgres, in the CSMS).
    """

    station_id: str
    connection_id: str
    revision: int
    epoch: int = 0

    @property
    def key(self) -> tuple[int, int]:
        return (self.epoch, self.revision)


@dataclass(frozen=True, slots=True)
class Owner:
    station_id: str
    node_id: str
    connection_id: str
    address: str  # internal endpoint of the owning node ("" if the node record is gone)


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    address: str
    version: str
    started_at: float


class EpochSource(Protocol):
    """Orders coordinator domains for fencing: a domain is a name for one revision space (one etcd data set,
    one lone-node process). The source issues each domain an epoch the first time it is seen, larger than every
    epoch before, and says whether the domain's epoch is still the newest one."""

    async def fence_epoch(self, domain: str) -> tuple[int, bool]: ...


class NoEpochs:
    """For a coordinator whose claims are never compared across domains (tests of the coordinator alone)."""

    async def fence_epoch(self, domain: str) -> tuple[int, bool]:
        await trio.lowlevel.checkpoint()
        return 0, True


@runtime_checkable
class Coordinator(Protocol):
    """Station ownership, node membership and leadership for one replica.

    Callbacks are plain functions called from the coordinator's own task: they must not block
    (cancel a scope, set an event, send_nowait on a channel).
    """

    node_id: str

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None: ...

    async def claim(self, station_id: str, connection_id: str) -> Claim: ...

    async def release(self, claim: Claim) -> None: ...

    async def owner_of(self, station_id: str) -> Owner | None: ...

    async def owners_of(self, station_ids: Sequence[str]) -> dict[str, Owner]:
        """Owners of many stations in one round trip (API pages); stations without an owner are absent."""
        ...

    async def nodes(self) -> list[NodeInfo]: ...

    async def owned_counts(self) -> dict[str, int]: ...

    async def hold_keys(self, group: str, names: Sequence[str]) -> set[str]:
        """Leased singletons: take each free key ``group/name`` for this node (bound to its lease, so it goes
        with the node), give up held ones no longer named, and return the names this node holds now."""
        ...

    async def key_holders(self, group: str) -> dict[str, str]:
        """Which node holds each key of ``group`` (name -> node id)."""
        ...

    async def watch_released(self, group: str, released: Callable[[], None]) -> None:
        """Until cancelled, call ``released()`` soon after a key of ``group`` is deleted (its holder left or
        gave it up), so a waiting node can take it at once instead of on its next poll."""
        ...

    def on_claim_lost(self, cb: Callable[[Claim], None]) -> None: ...

    def on_lease_lost(self, cb: Callable[[], None]) -> None:
        """The node lost its lease: no leadership, no singletons and no new claims until it rejoins. Its stations
        are kept (their writes are fenced in Postgres) and re-claimed when it rejoins."""

    def on_leader_changed(self, cb: Callable[[bool], None]) -> None: ...

    @property
    def is_leader(self) -> bool: ...

    @property
    def leader_id(self) -> str | None: ...

    @property
    def healthy(self) -> bool: ...

    async def wait_leadership(self) -> None: ...

    async def wait_leadership_lost(self) -> None: ...

    async def run_exclusive(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` on at most one node at a time per ``name`` (until cancelled; restarted on another node
        within about one lease TTL when its holder dies)."""
        ...

    async def drain(self) -> None: ...
