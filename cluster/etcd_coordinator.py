"""Station ownership, membership and leadership on etcd (ARCHITECTURE.md section 3): the composition.

Keys under ``prefix`` (``etcd_keys``): ``nodes/{node}``, ``owners/{station}`` and ``leader``, all bound to this
node's lease, so a dead node's claims vanish with its lease; and ``fence-domain`` (no lease, ``fence_domain``).
The parts: ``lease`` (keepalive, lost before etcd can expire it), ``claims`` (owner keys, the owners watch,
orphans; puts batched by ``owner_puts``), ``election`` (the leader key), ``etcd_queries`` (reads, singletons).

When the lease is lost the node gives up its membership and leadership but keeps the stations it serves: every
write for them is fenced in Postgres, so another node claiming one of them is enough to stop us writing for it.
When etcd answers again the node rejoins with a new lease and claims its stations again (losing those claimed
meanwhile).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import orjson
import trio

from cluster.callbacks import Flag, Hooks
from cluster.claims import Claims
from cluster.contract import Claim, EpochSource, NodeInfo, NoEpochs, Owner
from cluster.election import Election
from cluster.errors import EtcdError, EtcdLeaseNotFound, EtcdUnavailable
from cluster.etcd_client import EtcdClient
from cluster.etcd_keys import Keys
from cluster.etcd_queries import EtcdQueries
from cluster.fence_domain import FenceDomain
from cluster.lease import LeaseKeeper
from cluster.observer import ClusterObserver, NullObserver
from cluster.results import WatchEvent
from cluster.singletons import Job, LeasedSingletons

log = logging.getLogger(__name__)

REJOIN_WAIT = 2.0  # how long a claim waits for the next lease while the node rejoins (it starts at once)


class EtcdCoordinator:
    """The etcd-backed Coordinator. Start with ``await nursery.start(coordinator.run)``."""

    def __init__(
        self,
        client: EtcdClient,
        node_id: str,
        address: str,
        version: str,
        *,
        prefix: str = "/csms/",
        lease_ttl: float = 10.0,
        fence_margin: float | None = None,
        claim_attempts: int = 5,
        claim_batch: int = 64,
        observer: ClusterObserver | None = None,
        epochs: EpochSource | None = None,
    ) -> None:
        self.node_id = node_id
        self.address = address
        self.version = version
        self._etcd = client
        self._keys = Keys(prefix)
        self._observer: ClusterObserver = observer or NullObserver()
        self._domain = FenceDomain(client, self._keys.domain, epochs or NoEpochs())
        self._lease = LeaseKeeper(client, lease_ttl, fence_margin)
        self._claims = Claims(
            client,
            self._keys,
            node_id,
            self._domain,
            self._observer,
            attempts=claim_attempts,
            batch=claim_batch,
            retry_delay=min(1.0, self._lease.ttl / 4),
        )
        self._election = Election(client, self._keys.leader, node_id, self._observer)
        self._queries = EtcdQueries(client, self._keys, node_id)
        self._started_at = time.time()
        self._join_revision = 0
        self._healthy = Flag(False)
        self._draining = False
        self._drained = trio.Event()
        self._run_scope: trio.CancelScope | None = None
        self._generation: trio.CancelScope | None = None
        self._lease_lost_hooks: Hooks[None] = Hooks()

    # -- public state -----------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self._election.flag.value

    @property
    def leader_id(self) -> str | None:
        return self._election.leader_id

    @property
    def healthy(self) -> bool:
        return self._healthy.value

    @property
    def lease_id(self) -> int | None:
        return self._lease.lease_id

    @property
    def held_claims(self) -> dict[str, Claim]:
        """Claims this node currently believes it holds, re-claimed after a lost lease or not (a copy)."""
        return self._claims.held

    @property
    def queued_claims(self) -> int:
        """Owner-key puts queued or in flight (at most 4 x claim_batch)."""
        return self._claims.queued

    def on_claim_lost(self, cb: Callable[[Claim], None]) -> None:
        self._claims.lost.add(cb)

    def on_lease_lost(self, cb: Callable[[], None]) -> None:
        self._lease_lost_hooks.add(lambda _: cb())

    def on_leader_changed(self, cb: Callable[[bool], None]) -> None:
        self._election.hooks.add(cb)

    async def wait_leadership(self) -> None:
        await self._election.flag.wait_for(True)

    async def wait_leadership_lost(self) -> None:
        await self._election.flag.wait_for(False)

    # -- lifecycle --------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Join (retrying until etcd answers), report started, then keep lease, watches and election.

        Cancelling run() is a crash as far as the cluster is concerned (the lease just expires);
        call drain() for a clean exit.
        """
        with trio.CancelScope() as self._run_scope:
            await self._join_until_done()
            task_status.started()
            while not self._draining:
                lease = self._lease.lease_id
                assert lease is not None
                async with trio.open_nursery() as generation:
                    self._generation = generation.cancel_scope
                    generation.start_soon(self._lease.keep_alive, self._lease_lost)
                    generation.start_soon(self._claims.watch_owners, self._join_revision + 1, self._owner_event)
                    generation.start_soon(self._claims.read_owner_hints)
                    generation.start_soon(self._election.campaign, lease, self._lease.granted_ttl)
                    generation.start_soon(self._claims.run_puts)
                    generation.start_soon(self._claims.reclaim_orphans, lease, self._lease.revoke_stale)
                if not self._draining:
                    await self._join_until_done()
        if self._draining:
            await self._drained.wait()  # our caller may close the client once we return

    def _owner_event(self, event: WatchEvent) -> None:
        self._on_owner_event(event)  # looked up per event: tests interpose on it at racy moments

    def _on_owner_event(self, event: WatchEvent) -> None:
        self._claims.on_owner_event(event)

    async def drain(self) -> None:
        """Leave cleanly: stop the loops, resign leadership, revoke the lease (owner keys go with it)."""
        self._draining = True
        self._election.resigned = True
        if self._run_scope is not None:
            self._run_scope.cancel()
        lease, self._lease.lease_id = self._lease.lease_id, None
        self._claims.clear()
        self._healthy.set(False)
        self._election.set_leader(None)
        try:
            if lease is not None:
                try:
                    await self._election.resign(lease)
                    await self._etcd.lease_revoke(lease)
                except EtcdError as exc:
                    log.warning("drain: could not resign/revoke cleanly (lease will expire): %r", exc)
        finally:
            self._drained.set()
            self._observer.lease_state("drained")

    async def _join_until_done(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._join()
                return
            except Exception as exc:  # etcd unreachable, or Postgres (the fence epoch) unreachable
                log.warning("node %s: joining the cluster failed: %r", self.node_id, exc)
            await trio.sleep(delay)
            delay = min(delay * 2, max(0.2, self._lease.ttl / 4))

    async def _join(self) -> None:
        sent = trio.current_time()
        lease = await self._etcd.lease_grant(self._lease.ttl)
        try:
            info = {"address": self.address, "version": self.version, "started_at": self._started_at}
            put = await self._etcd.put(self._keys.nodes + self.node_id, orjson.dumps(info), lease=lease.id)
            await self._domain.ensure()
        except BaseException:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await self._lease.revoke_quietly(lease.id)
            raise
        self._lease.start(lease.id, lease.ttl, sent)
        self._claims.new_session(lease.id)
        self._join_revision = put.revision
        self._healthy.set(True)
        self._observer.lease_state("live")
        log.info("node %s joined with lease %x", self.node_id, lease.id)

    def _lease_lost(self, reason: str) -> None:
        """etcd may already consider our lease expired: stop leading and claiming now, and rejoin.

        The stations we serve are kept (as orphans, re-claimed on rejoin): their owner keys may be gone, but
        each of their writes still commits only under its fence in Postgres, so the first claim another node
        records for one of them stops us writing for it (and the rejected write closes that connection).
        """
        if self._draining:
            return
        self._lease.lose()
        self._claims.end_session()  # re-claimed by the next session's reclaim_orphans
        held = len(self._claims.held)
        log.warning("node %s lost its lease (%s); serving %d stations on", self.node_id, reason, held)
        self._healthy.set(False)
        self._election.set_leader(None)
        self._observer.lease_state("lost")
        self._lease_lost_hooks.fire(None)
        if self._generation is not None:
            self._generation.cancel()

    # -- claims -----------------------------------------------------------------------------------

    async def claim(self, station_id: str, connection_id: str) -> Claim:
        """Make this connection the station's owner; the newest claim wins over any other.

        A claim whose txn names a lease etcd no longer has (etcd rebuilt from empty, or the lease expired before
        the keep-alive noticed) ends the session at once instead of at the next renewal; a claim made while the
        node rejoins waits up to REJOIN_WAIT for the next lease. Either way the station reconnecting right then
        is served, not refused (it was refused until the keep-alive noticed, up to a third of the TTL later).
        """
        for attempt in (1, 2):
            lease = self._lease.lease_id
            if lease is None or not self.healthy:
                with trio.move_on_after(REJOIN_WAIT):
                    await self._healthy.wait_for(True)
                lease = self._lease.lease_id
                if lease is None or not self.healthy:
                    self._observer.claim_finished(0.0, "error")
                    raise EtcdUnavailable("cannot claim: this node has no live lease (lost, or not joined yet)")
            try:
                return await self._claims.claim(station_id, connection_id, lease)
            except EtcdLeaseNotFound:
                if attempt == 2:
                    raise
                if self._lease.lease_id == lease:
                    self._lease_lost("a claim found the lease gone from etcd")
        raise AssertionError("unreachable")

    async def release(self, claim: Claim) -> None:
        await self._claims.release(claim)

    # -- singletons and exclusive jobs ------------------------------------------------------------

    async def hold_keys(self, group: str, names: Sequence[str]) -> set[str]:
        lease = self._lease.lease_id
        if lease is None or self._draining:
            return set()
        held = await self._queries.hold_keys(group, names, lease)
        return held if self._lease.lease_id == lease else set()

    async def key_holders(self, group: str) -> dict[str, str]:
        return await self._queries.key_holders(group)

    async def watch_released(self, group: str, released: Callable[[], None]) -> None:
        await self._queries.watch_released(group, released)

    async def run_exclusive(self, name: str, job: Job) -> None:
        """Run ``job`` while this node holds the singleton key ``exclusive/{name}/holder``: one node at a time."""
        await LeasedSingletons.exclusive(self, name, job)

    # -- queries ----------------------------------------------------------------------------------

    async def owner_of(self, station_id: str) -> Owner | None:
        """Who owns the station and where to reach it (one read-only txn)."""
        return (await self.owners_of([station_id])).get(station_id)

    async def owners_of(self, station_ids: Sequence[str]) -> dict[str, Owner]:
        return await self._queries.owners_of(station_ids)

    async def nodes(self) -> list[NodeInfo]:
        return await self._queries.nodes()

    async def owned_counts(self) -> dict[str, int]:
        return await self._queries.owned_counts()
