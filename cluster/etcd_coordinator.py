"""Station ownership, membership and leadership on etcd (ARCHITECTURE.md section 3).

Keys under ``prefix``: ``nodes/{node}`` and ``owners/{station}`` and ``leader``, all bound to this
node's lease, so a dead node's claims vanish with its lease; and ``fence-domain`` (no lease), a random name
for this etcd's revision space, read atomically with every claim: an etcd rebuilt from empty has none, gets a
new one, and so a new fence epoch (claims are ordered by (epoch, revision); see ``EpochSource``).

The lease is renewed every TTL/3; if a renewal has not succeeded by the local deadline (TTL minus a margin,
measured from when the last successful renewal was *sent*), the node gives up its membership and leadership
before etcd can expire the lease, but keeps the stations it serves: every write for them is fenced in
Postgres, so another node claiming one of them is enough to stop us writing for it. When etcd answers
again the node rejoins with a new lease and claims its stations again (losing those claimed meanwhile).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import orjson
import trio

from cluster.callbacks import Flag, Hooks
from cluster.contract import Claim, EpochSource, NodeInfo, NoEpochs, Owner
from cluster.errors import ClaimSuperseded, EtcdCompacted, EtcdError, EtcdLeaseNotFound, EtcdUnavailable
from cluster.etcd_client import EtcdClient
from cluster.exclusive import Job, run_exclusive
from cluster.observer import ClusterObserver, NullObserver
from cluster.results import KeyValue, RangeResult, WatchEvent
from cluster.txn import Compare, Op

log = logging.getLogger(__name__)

_OWNERS_PER_TXN = 100  # etcd's --max-txn-ops defaults to 128; one more op reads the node records


@dataclass(eq=False)
class _OwnerPut:
    """One station's owner-key put waiting for (or riding in) a batched claim txn.

    ``expected`` is the guard: the key's mod revision it must still have (0: the key must be absent); with
    ``mine`` the key must instead hold exactly ``value`` (our own claim, whatever its revision: re-claiming
    after a rejoin). The outcome is exact per station: ``revision`` (and the ``domain`` read with it) when the
    put landed, else ``current`` (the key as read atomically with the failed compare, None if absent) so the
    claimer can retry on that revision.
    """

    key: str
    value: bytes
    expected: int
    lease: int
    mine: bool = False
    done: trio.Event = field(default_factory=trio.Event)
    abandoned: bool = False
    revision: int = 0
    domain: str = ""
    current: KeyValue | None = None
    error: BaseException | None = None

    def guard(self) -> Compare:
        if self.mine:
            return Compare.value(self.key, "=", self.value)
        if self.expected == 0:
            return Compare.create_revision(self.key, "=", 0)
        return Compare.mod_revision(self.key, "=", self.expected)

    def holds(self, kv: KeyValue | None) -> bool:
        if self.mine:
            return kv is not None and kv.value == self.value
        return (kv.mod_revision if kv is not None else 0) == self.expected

    def finish(self, *, revision: int = 0, current: KeyValue | None = None, error: BaseException | None = None) -> None:
        self.revision, self.current, self.error = revision, current, error
        self.done.set()


@dataclass
class _Inflight:
    """Owner-key revisions seen by the watch while a claim() for the station is in flight."""

    count: int = 0
    seen: list[int] = field(default_factory=list)


def _decode(raw: bytes) -> dict[str, object]:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


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
        self._prefix = prefix if prefix.endswith("/") else prefix + "/"
        self._ttl = float(lease_ttl)
        self._margin = fence_margin if fence_margin is not None else max(0.25, min(1.0, self._ttl * 0.2))
        self._claim_attempts = claim_attempts
        # Owner-key puts of concurrent claims ride in one txn (a reconnect storm is thousands of claims).
        self._claim_batch = max(1, min(claim_batch, 100))  # etcd's default --max-txn-ops is 128
        # Queued puts are bounded: one txn in flight and a few ready keep the batcher busy; more claims wait
        # for room (within their caller's deadline) instead of growing a list every batch scans.
        self._claim_room = trio.CapacityLimiter(4 * self._claim_batch)
        self._puts: list[_OwnerPut] = []
        self._puts_ready = trio.Event()
        self._observer: ClusterObserver = observer or NullObserver()
        self._epochs: EpochSource = epochs or NoEpochs()
        self._epoch_of_domain: dict[str, int] = {}
        self._started_at = time.time()

        self._lease_id: int | None = None
        self._granted_ttl = self._ttl
        self._stale_lease: int | None = None
        self._last_renew_sent = 0.0
        self._lease_deadline = 0.0
        self._join_revision = 0
        self._healthy = Flag(False)
        self._draining = False
        self._drained = trio.Event()
        self._run_scope: trio.CancelScope | None = None
        self._generation: trio.CancelScope | None = None

        self._claims: dict[str, Claim] = {}
        # Claims made under a lease we lost: still served (Postgres fences their writes), re-claimed on rejoin.
        self._orphans: dict[str, Claim] = {}
        self._orphaned = trio.Event()
        self._inflight: dict[str, _Inflight] = {}
        self._leader = Flag(False)
        self._leader_id: str | None = None

        self._lost: Hooks[Claim] = Hooks()
        self._lease_lost_hooks: Hooks[None] = Hooks()
        self._leader_hooks: Hooks[bool] = Hooks()

    # -- keys -------------------------------------------------------------------------------------

    def _owner_key(self, station_id: str) -> str:
        return f"{self._prefix}owners/{station_id}"

    @property
    def _owners_prefix(self) -> str:
        return f"{self._prefix}owners/"

    @property
    def _nodes_prefix(self) -> str:
        return f"{self._prefix}nodes/"

    @property
    def _leader_key(self) -> str:
        return f"{self._prefix}leader"

    @property
    def _domain_key(self) -> str:
        return f"{self._prefix}fence-domain"

    def _owner_value(self, connection_id: str) -> bytes:
        return orjson.dumps({"node_id": self.node_id, "connection_id": connection_id})

    # -- public state -----------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self._leader.value

    @property
    def leader_id(self) -> str | None:
        return self._leader_id

    @property
    def healthy(self) -> bool:
        return self._healthy.value

    @property
    def lease_id(self) -> int | None:
        return self._lease_id

    @property
    def held_claims(self) -> dict[str, Claim]:
        """Claims this node currently believes it holds, re-claimed after a lost lease or not (a copy)."""
        return {**self._orphans, **self._claims}

    def on_claim_lost(self, cb: Callable[[Claim], None]) -> None:
        self._lost.add(cb)

    def on_lease_lost(self, cb: Callable[[], None]) -> None:
        self._lease_lost_hooks.add(lambda _: cb())

    def on_leader_changed(self, cb: Callable[[bool], None]) -> None:
        self._leader_hooks.add(cb)

    async def wait_leadership(self) -> None:
        await self._leader.wait_for(True)

    async def wait_leadership_lost(self) -> None:
        await self._leader.wait_for(False)

    async def wait_healthy(self) -> None:
        await self._healthy.wait_for(True)

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
                async with trio.open_nursery() as generation:
                    self._generation = generation.cancel_scope
                    generation.start_soon(self._keepalive_loop)
                    generation.start_soon(self._owners_watch_loop, self._join_revision + 1)
                    generation.start_soon(self._election_loop)
                    generation.start_soon(self._claim_batcher)
                    generation.start_soon(self._reclaim_orphans)
                if not self._draining:
                    await self._join_until_done()
        if self._draining:
            await self._drained.wait()  # our caller may close the client once we return

    async def drain(self) -> None:
        """Leave cleanly: stop the loops, resign leadership, revoke the lease (owner keys go with it)."""
        self._draining = True
        if self._run_scope is not None:
            self._run_scope.cancel()
        lease, self._lease_id = self._lease_id, None
        self._claims.clear()
        self._orphans.clear()
        self._fail_puts([])
        self._healthy.set(False)
        self._set_leader(None)
        try:
            if lease is not None:
                await self._resign_and_revoke(lease)
        finally:
            self._drained.set()
            self._observer.lease_state("drained")

    async def _resign_and_revoke(self, lease: int) -> None:
        try:
            await self._etcd.txn(
                [
                    Compare.value(self._leader_key, "=", self.node_id),
                    Compare.lease(self._leader_key, "=", lease),
                ],
                [Op.delete(self._leader_key)],
            )
            await self._etcd.lease_revoke(lease)
        except EtcdError as exc:
            log.warning("drain: could not resign/revoke cleanly (lease will expire): %r", exc)

    async def _join_until_done(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._join()
                return
            except Exception as exc:  # etcd unreachable, or Postgres (the fence epoch) unreachable
                log.warning("node %s: joining the cluster failed: %r", self.node_id, exc)
            await trio.sleep(delay)
            delay = min(delay * 2, max(0.2, self._ttl / 4))

    async def _join(self) -> None:
        sent = trio.current_time()
        lease = await self._etcd.lease_grant(self._ttl)
        try:
            info = {"address": self.address, "version": self.version, "started_at": self._started_at}
            put = await self._etcd.put(self._nodes_prefix + self.node_id, orjson.dumps(info), lease=lease.id)
            await self._ensure_domain()
        except BaseException:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await self._revoke_quietly(lease.id)
            raise
        self._granted_ttl = float(lease.ttl)
        self._last_renew_sent = sent
        self._lease_deadline = sent + lease.ttl - self._margin
        self._lease_id = lease.id
        self._join_revision = put.revision
        self._healthy.set(True)
        self._observer.lease_state("live")
        log.info("node %s joined with lease %x", self.node_id, lease.id)

    async def _ensure_domain(self) -> None:
        """Agree with the other nodes on this etcd's fence domain, and know its epoch.

        The domain is a random name kept in etcd (an etcd rebuilt from empty has none and gets a new one, so its
        restarted revisions come with a newer epoch). If another domain was seen since ours (a single node served
        this database meanwhile), ours starts afresh too, or its claims would be older than that node's.
        """
        key = self._domain_key
        for _ in range(5):
            kv = (await self._etcd.get(key)).first()
            if kv is not None:
                domain = kv.value.decode(errors="replace")
                epoch, newest = await self._epochs.fence_epoch(domain)
                if newest:
                    self._epoch_of_domain[domain] = epoch
                    return
            guard = Compare.mod_revision(key, "=", kv.mod_revision) if kv else Compare.create_revision(key, "=", 0)
            await self._etcd.txn([guard], [Op.put(key, f"etcd:{uuid.uuid4().hex}")])  # lost a race: read again
        raise EtcdError("could not agree on a fence domain in 5 tries")

    async def _epoch(self, domain: str) -> int:
        if not domain:  # someone deleted the domain key: start a new domain; this claim fails, the next works
            await self._ensure_domain()
            raise EtcdUnavailable("the fence domain key was missing from etcd")
        epoch = self._epoch_of_domain.get(domain)
        if epoch is None:
            epoch, _ = await self._epochs.fence_epoch(domain)
            self._epoch_of_domain[domain] = epoch
        return epoch

    async def _revoke_quietly(self, lease_id: int) -> None:
        try:
            await self._etcd.lease_revoke(lease_id)
        except EtcdError as exc:
            log.debug("revoking lease %x: %r", lease_id, exc)

    # -- lease keepalive ---------------------------------------------------------------------------

    async def _keepalive_loop(self) -> None:
        interval = self._granted_ttl / 3
        retry = min(0.2, interval / 4)
        lease = self._lease_id
        assert lease is not None
        while True:
            await trio.sleep_until(self._last_renew_sent + interval)
            renewed = False
            with trio.move_on_at(self._lease_deadline):
                while not renewed:
                    sent = trio.current_time()
                    budget = max(0.05, min(self._etcd.timeout, self._lease_deadline - sent))
                    try:
                        with trio.fail_after(budget):
                            ttl = await self._etcd.lease_keepalive(lease)
                    except EtcdLeaseNotFound:
                        self._lease_lost("lease expired in etcd")
                        return
                    except (EtcdError, trio.TooSlowError) as exc:
                        log.debug("keepalive failed: %r", exc)
                        await trio.sleep(retry)
                        continue
                    except Exception:
                        # A bug here must not kill the replica: give up the lease (the safe state), rejoin afresh.
                        log.exception("keepalive crashed")
                        self._lease_lost("keepalive crashed")
                        return
                    self._last_renew_sent = sent
                    self._lease_deadline = sent + ttl - self._margin
                    renewed = True
            if not renewed:
                self._lease_lost("lease not renewed before its deadline")
                return

    def _lease_lost(self, reason: str) -> None:
        """etcd may already consider our lease expired: stop leading and claiming now, and rejoin.

        The stations we serve are kept (as orphans, re-claimed on rejoin): their owner keys may be gone, but
        each of their writes still commits only under its fence in Postgres, so the first claim another node
        records for one of them stops us writing for it (and the rejected write closes that connection).
        """
        if self._draining:
            return
        if self._lease_id is not None:
            self._stale_lease, self._lease_id = self._lease_id, None
        self._orphans.update(self._claims)  # re-claimed by the next session's _reclaim_orphans
        log.warning("node %s lost its lease (%s); serving %d stations on", self.node_id, reason, len(self._orphans))
        self._claims.clear()
        self._healthy.set(False)
        self._set_leader(None)
        self._observer.lease_state("lost")
        self._lease_lost_hooks.fire(None)
        if self._generation is not None:
            self._generation.cancel()

    async def _reclaim_orphans(self) -> None:
        """After a rejoin (or a key that vanished): claim the stations we still serve again under our lease, and
        lose those that another connection claimed meanwhile; then revoke the old lease (and its last keys)."""
        lease = self._lease_id
        assert lease is not None
        while True:
            self._orphaned = trio.Event()
            while self._orphans:
                async with trio.open_nursery() as nursery:
                    for orphan in list(self._orphans.values()):
                        nursery.start_soon(self._reclaim, orphan, lease)
                if self._orphans:  # etcd failed some: try again shortly, in this session
                    await trio.sleep(min(1.0, self._ttl / 4))
            if self._stale_lease is not None:
                stale, self._stale_lease = self._stale_lease, None
                await self._revoke_quietly(stale)
            await self._orphaned.wait()

    async def _reclaim(self, orphan: Claim, lease: int) -> None:
        station_id = orphan.station_id
        key, value = self._owner_key(station_id), self._owner_value(orphan.connection_id)
        try:
            with self._watching(station_id) as inflight:
                put = await self._put_owner(key, value, 0, lease, mine=True)
                if put.error is None and not put.revision and put.current is None:
                    put = await self._put_owner(key, value, 0, lease)  # our key went with the old lease: create it
                if put.error is not None:
                    raise put.error
                epoch = await self._epoch(put.domain) if put.revision else 0
                superseded = any(rev > put.revision for rev in inflight.seen) if put.revision else False
        except Exception as exc:
            log.info("re-claiming %s failed: %r", station_id, exc)
            return
        if self._orphans.get(station_id) is not orphan:  # released, or claimed by a new connection, meanwhile
            if put.revision:  # the key we just moved must not outlive the connection
                with contextlib.suppress(EtcdError):
                    await self._etcd.txn([Compare.mod_revision(key, "=", put.revision)], [Op.delete(key)])
            return
        del self._orphans[station_id]
        if put.revision and not superseded:
            self._claims[station_id] = Claim(station_id, orphan.connection_id, put.revision, epoch)
        else:
            self._observer.claim_lost(station_id)
            self._lost.fire(orphan)

    @contextlib.contextmanager
    def _watching(self, station_id: str) -> Iterator[_Inflight]:
        """Collect the owner-key revisions the watch sees for the station while our put is in flight: one newer
        than ours landed after it, and the watch (which then had no claim of ours to compare) let it pass."""
        inflight = self._inflight.setdefault(station_id, _Inflight())
        inflight.count += 1
        try:
            yield inflight
        finally:
            inflight.count -= 1
            if inflight.count == 0:
                del self._inflight[station_id]

    # -- claims -----------------------------------------------------------------------------------

    async def claim(self, station_id: str, connection_id: str) -> Claim:
        """Make this connection the station's owner; the newest claim wins over any other."""
        started = time.perf_counter()
        lease = self._lease_id
        if lease is None or not self.healthy:
            self._observer.claim_finished(time.perf_counter() - started, "error")
            raise EtcdUnavailable("cannot claim: this node has no live lease (lost, or not joined yet)")
        try:
            with self._watching(station_id) as inflight:
                revision, domain, took_over = await self._claim_txn(station_id, connection_id, lease)
                if any(rev > revision for rev in inflight.seen):
                    self._observer.claim_finished(time.perf_counter() - started, "superseded")
                    raise ClaimSuperseded(f"station {station_id}: a newer claim landed during ours")
                if self._lease_id != lease:
                    raise EtcdUnavailable("lease lost while claiming")
                epoch = await self._epoch(domain)
        except EtcdError:
            self._observer.claim_finished(time.perf_counter() - started, "error")
            raise
        claim = Claim(station_id, connection_id, revision, epoch)
        old = self._claims.get(station_id)
        if old is None or old.revision < revision:
            self._claims[station_id] = claim
        self._observer.claim_finished(time.perf_counter() - started, "takeover" if took_over else "created")
        if old is not None and old.revision < revision and old.connection_id != connection_id:
            self._lose(old)
        orphan = self._orphans.get(station_id)
        if orphan is not None:  # a new connection of a station we served before losing our lease
            self._lose(orphan)
        return claim

    async def _claim_txn(self, station_id: str, connection_id: str, lease: int) -> tuple[int, str, bool]:
        key = self._owner_key(station_id)
        value = self._owner_value(connection_id)
        expected = 0  # first try: create-if-absent
        took_over = False
        for _ in range(self._claim_attempts):
            put = await self._put_owner(key, value, expected, lease)
            if put.error is not None:
                raise put.error
            if put.revision:
                return put.revision, put.domain, took_over
            kv = put.current
            if kv is None:
                expected = 0
            else:
                expected = kv.mod_revision  # compare-on-mod-revision takeover of exactly what we saw
                took_over = _decode(kv.value).get("node_id") != self.node_id
        raise EtcdError(f"station {station_id}: claim lost {self._claim_attempts} races in a row")

    async def _put_owner(self, key: str, value: bytes, expected: int, lease: int, *, mine: bool = False) -> _OwnerPut:
        """Queue one guarded owner-key put for the batcher and wait for its own outcome."""
        async with self._claim_room:
            if self._lease_id != lease:
                raise EtcdUnavailable("lease lost while claiming")
            put = _OwnerPut(key, value, expected, lease, mine)
            self._puts.append(put)
            self._puts_ready.set()
            try:
                await put.done.wait()
            except BaseException:
                put.abandoned = True  # not sent yet: the batcher drops it; sent: it may land, as any txn may
                raise
            return put

    @property
    def queued_claims(self) -> int:
        """Owner-key puts queued or in flight (at most 4 x claim_batch)."""
        return self._claim_room.borrowed_tokens

    async def _claim_batcher(self) -> None:
        """Send queued owner puts, up to ``claim_batch`` distinct keys per txn, one txn at a time.

        All guards go in one txn: if every one holds, every put lands at the txn's revision (each claim's
        revision), read together with the fence domain. If any fails, nothing is written and the failure branch
        reads every key at the same revision, so each put learns exactly whether its own guard held: those whose
        guard held are simply re-sent in the next txn, the others return the key they saw to their claimer.
        """
        lease = self._lease_id
        assert lease is not None
        batch: list[_OwnerPut] = []
        try:
            while True:
                self._puts = [p for p in self._puts if not p.abandoned]
                if not self._puts:
                    self._puts_ready = trio.Event()
                    await self._puts_ready.wait()
                    continue
                batch, keys, rest = [], set(), []
                for put in self._puts:
                    if put.lease != lease:  # queued under a lease this session does not hold
                        put.finish(error=EtcdUnavailable("lease lost while claiming"))
                        continue
                    # One put per key per txn (etcd refuses duplicates); a key's later puts wait their turn.
                    if len(batch) < self._claim_batch and put.key not in keys:
                        keys.add(put.key)
                        batch.append(put)
                    else:
                        rest.append(put)
                self._puts = rest
                if batch:
                    await self._send_batch(batch, lease)
                batch = []
        finally:
            self._fail_puts(batch)

    def _fail_puts(self, batch: list[_OwnerPut]) -> None:
        """The session ended (lease lost, draining, cancelled): nobody will send these puts now."""
        gone = EtcdUnavailable("cluster session ended while claiming")
        for put in [*batch, *self._puts]:
            if not put.done.is_set():
                put.finish(error=gone)
        self._puts = []

    async def _send_batch(self, batch: list[_OwnerPut], lease: int) -> None:
        try:
            result = await self._etcd.txn(
                [p.guard() for p in batch],
                [*(Op.put(p.key, p.value, lease=lease) for p in batch), Op.get(self._domain_key)],
                [Op.get(p.key) for p in batch],
            )
        except EtcdError as exc:
            for put in batch:
                put.finish(error=exc)
            return
        if result.succeeded:
            domain = result.responses[-1]
            assert isinstance(domain, RangeResult)
            kv = domain.first()
            for put in batch:
                put.domain = kv.value.decode(errors="replace") if kv is not None else ""
                put.finish(revision=result.revision)
            return
        retry = []
        for put, response in zip(batch, result.responses, strict=True):
            assert isinstance(response, RangeResult)
            kv = response.first()
            if put.holds(kv) and not put.abandoned:
                retry.append(put)  # innocent: another key in the txn failed its guard
            else:
                put.finish(current=kv)
        self._puts[:0] = retry

    async def release(self, claim: Claim) -> None:
        """Delete the owner key only if it still records this connection's claim (compare on its revision,
        which a re-claim after a lost lease may have moved on from ``claim``'s)."""
        station_id = claim.station_id
        orphan = self._orphans.get(station_id)
        if orphan is not None and orphan.connection_id == claim.connection_id:
            del self._orphans[station_id]  # its key went, or goes, with the lease we lost
        current = self._claims.get(station_id)
        if current is None or current.connection_id != claim.connection_id:
            return  # not ours (any more): nothing of ours to delete
        del self._claims[station_id]
        key = self._owner_key(station_id)
        await self._etcd.txn([Compare.mod_revision(key, "=", current.revision)], [Op.delete(key)])

    def _lose(self, claim: Claim) -> None:
        if self._claims.get(claim.station_id) == claim:
            del self._claims[claim.station_id]
        if self._orphans.get(claim.station_id) == claim:
            del self._orphans[claim.station_id]
        self._observer.claim_lost(claim.station_id)
        self._lost.fire(claim)

    def _on_owner_event(self, event: WatchEvent) -> None:
        station_id = event.kv.key[len(self._owners_prefix) :].decode(errors="replace")
        revision = event.kv.mod_revision
        inflight = self._inflight.get(station_id)
        if inflight is not None:
            inflight.seen.append(revision)
        claim = self._claims.get(station_id)
        if claim is None or revision <= claim.revision:
            return
        if event.type == "DELETE":
            self._orphan(claim)  # our lease expired or was revoked (or someone deleted the key): we still serve it
            return
        owner = _decode(event.kv.value)
        if owner.get("node_id") != self.node_id or owner.get("connection_id") != claim.connection_id:
            self._lose(claim)

    def _orphan(self, claim: Claim) -> None:
        """The claim's key is gone but nobody else claimed the station: keep serving it and claim it again."""
        del self._claims[claim.station_id]
        self._orphans[claim.station_id] = claim
        self._orphaned.set()

    async def _resync_claims(self) -> int:
        """After a compaction gap: drop every claim whose key changed; returns the read revision."""
        result = await self._etcd.get(self._owners_prefix, prefix=True)
        current = {kv.key[len(self._owners_prefix) :].decode(errors="replace"): kv for kv in result.kvs}
        for station_id, claim in list(self._claims.items()):
            kv = current.get(station_id)
            if kv is None:
                self._orphan(claim)
            elif kv.mod_revision != claim.revision:
                self._lose(claim)
        return result.revision

    async def _owners_watch_loop(self, start_revision: int) -> None:
        revision = start_revision
        while True:
            try:
                async with self._etcd.watch(self._owners_prefix, prefix=True, start_revision=revision) as events:
                    async for event in events:
                        revision = event.kv.mod_revision + 1
                        self._on_owner_event(event)
            except EtcdCompacted:
                log.warning("owners watch compacted at %d: re-reading", revision)
                try:
                    revision = await self._resync_claims() + 1
                except EtcdError:
                    await trio.sleep(0.2)
            except EtcdError as exc:
                log.debug("owners watch: %r", exc)
                await trio.sleep(0.2)

    # -- election ---------------------------------------------------------------------------------

    def _set_leader(self, leader_id: str | None) -> None:
        self._leader_id = leader_id
        mine = leader_id is not None and leader_id == self.node_id and not self._draining
        if self._leader.set(mine):
            log.info("node %s leadership: %s", self.node_id, mine)
            self._observer.leader(mine)
            self._leader_hooks.fire(mine)

    async def _election_loop(self) -> None:
        """Create-if-absent on the leased ``leader`` key; followers watch it and campaign on delete."""
        lease = self._lease_id
        assert lease is not None
        key = self._leader_key
        while True:
            try:
                result = await self._etcd.txn(
                    [Compare.create_revision(key, "=", 0)],
                    [Op.put(key, self.node_id, lease=lease)],
                    [Op.get(key)],
                )
            except EtcdError as exc:
                log.debug("election: %r", exc)
                await trio.sleep(0.2)
                continue
            if result.succeeded:
                self._set_leader(self.node_id)
            else:
                current = result.responses[0]
                assert isinstance(current, RangeResult)
                kv = current.first()
                if kv is None:
                    continue
                holder = kv.value.decode(errors="replace")
                self._set_leader(holder if (holder != self.node_id or kv.lease == lease) else None)
            if await self._watch_leader_until_gone(result.revision + 1):
                self._set_leader(None)
            # else: the periodic re-check; the next txn re-confirms the holder without a leaderless blip

    async def _watch_leader_until_gone(self, start_revision: int) -> bool:
        """True once the leader key is deleted; False after one TTL (a hung stream must not keep us leaderless)."""
        with trio.move_on_after(self._granted_ttl):
            try:
                async with self._etcd.watch(self._leader_key, start_revision=start_revision) as events:
                    async for event in events:
                        if event.type == "DELETE":
                            return True
                        self._set_leader(event.kv.value.decode(errors="replace"))
            except EtcdError as exc:
                log.debug("leader watch: %r", exc)
                await trio.sleep(0.2)
        return False

    # -- exclusive jobs ---------------------------------------------------------------------------

    async def run_exclusive(self, name: str, job: Job) -> None:
        """Run ``job`` while this node holds ``exclusive/{name}`` (its own lease): one node at a time."""
        await run_exclusive(self._etcd, f"{self._prefix}exclusive/{name}", self.node_id, job, ttl=self._ttl)

    # -- queries ----------------------------------------------------------------------------------

    async def owner_of(self, station_id: str) -> Owner | None:
        """Who owns the station and where to reach it (one read-only txn)."""
        return (await self.owners_of([station_id])).get(station_id)

    async def owners_of(self, station_ids: Sequence[str]) -> dict[str, Owner]:
        """Read-only txns of one get per station (chunked under etcd's default limit of 128 ops per txn) plus
        the node records for their addresses: one round trip for an API page instead of one per row."""
        wanted = sorted(set(station_ids))
        found: dict[str, Owner] = {}
        for start in range(0, len(wanted), _OWNERS_PER_TXN):
            chunk = wanted[start : start + _OWNERS_PER_TXN]
            ops = [Op.get(self._owner_key(station_id)) for station_id in chunk]
            result = await self._etcd.txn([], [*ops, Op.get(self._nodes_prefix, prefix=True)])
            *owners, nodes = result.responses
            assert isinstance(nodes, RangeResult)
            addresses = {
                kv.key[len(self._nodes_prefix) :].decode(errors="replace"): str(_decode(kv.value).get("address", ""))
                for kv in nodes.kvs
            }
            for station_id, owner_range in zip(chunk, owners, strict=True):
                assert isinstance(owner_range, RangeResult)
                kv = owner_range.first()
                if kv is not None:
                    owner = _decode(kv.value)
                    node_id = str(owner.get("node_id", ""))
                    connection_id = str(owner.get("connection_id", ""))
                    found[station_id] = Owner(station_id, node_id, connection_id, addresses.get(node_id, ""))
        return found

    async def nodes(self) -> list[NodeInfo]:
        result = await self._etcd.get(self._nodes_prefix, prefix=True)
        return [self._node_info(kv.key, kv.value) for kv in result.kvs]

    def _node_info(self, key: bytes, value: bytes) -> NodeInfo:
        info = _decode(value)
        started = info.get("started_at", 0.0)
        return NodeInfo(
            node_id=key[len(self._nodes_prefix) :].decode(errors="replace"),
            address=str(info.get("address", "")),
            version=str(info.get("version", "")),
            started_at=float(started) if isinstance(started, int | float) else 0.0,
        )

    def _singletons_prefix(self, group: str) -> str:
        return f"{self._prefix}singletons/{group}/"

    async def key_holders(self, group: str) -> dict[str, str]:
        prefix = self._singletons_prefix(group)
        result = await self._etcd.get(prefix, prefix=True)
        return {kv.key[len(prefix) :].decode(errors="replace"): kv.value.decode(errors="replace") for kv in result.kvs}

    async def hold_keys(self, group: str, names: Sequence[str]) -> set[str]:
        """One range read, then a create-if-absent txn per free key (rare: only after a holder left)."""
        lease = self._lease_id
        if lease is None or self._draining:
            return set()
        prefix = self._singletons_prefix(group)
        wanted = set(names)
        present = {
            kv.key[len(prefix) :].decode(errors="replace"): kv for kv in (await self._etcd.get(prefix, prefix=True)).kvs
        }
        held = {name for name, kv in present.items() if kv.lease == lease and name in wanted}
        for name in sorted(wanted - present.keys()):
            key = prefix + name
            taken = await self._etcd.txn(
                [Compare.create_revision(key, "=", 0)], [Op.put(key, self.node_id, lease=lease)]
            )
            if taken.succeeded:
                held.add(name)
        for name, kv in present.items():
            if kv.lease == lease and name not in wanted:
                await self._etcd.txn([Compare.lease(prefix + name, "=", lease)], [Op.delete(prefix + name)])
        return held if self._lease_id == lease else set()

    async def owned_counts(self) -> dict[str, int]:
        """Stations owned per live node (live nodes owning nothing appear with 0)."""
        result = await self._etcd.txn(
            [], [Op.get(self._nodes_prefix, prefix=True), Op.get(self._owners_prefix, prefix=True)]
        )
        nodes, owners = result.responses
        assert isinstance(nodes, RangeResult) and isinstance(owners, RangeResult)
        counts = {self._node_info(kv.key, kv.value).node_id: 0 for kv in nodes.kvs}
        for kv in owners.kvs:
            node_id = str(_decode(kv.value).get("node_id", ""))
            counts[node_id] = counts.get(node_id, 0) + 1
        return counts
