"""Station claims on etcd: owner keys under the node's lease, the owners watch, and orphans re-claimed on rejoin.

A claim is the station's owner key written by this node (batched, see ``owner_puts``); the newest claim wins.
The owners watch tells us when another connection's claim replaces ours (the claim is lost) or when our key
vanished with a lost lease (the claim becomes an *orphan*: still served, since every write is fenced in
Postgres, and claimed again under the next lease).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import orjson
import trio

from cluster.callbacks import Hooks
from cluster.contract import Claim
from cluster.errors import ClaimSuperseded, EtcdCompacted, EtcdError, EtcdUnavailable
from cluster.etcd_client import EtcdClient
from cluster.etcd_keys import Keys, decode
from cluster.fence_domain import FenceDomain
from cluster.observer import ClusterObserver
from cluster.owner_deletes import OwnerDeleteBatcher
from cluster.owner_puts import OwnerPut, OwnerPutBatcher, PutOutcome
from cluster.results import WatchEvent
from cluster.txn import Compare, Op
from microbatch import BatcherClosed

log = logging.getLogger(__name__)


@dataclass
class _Inflight:
    """Owner-key revisions seen by the watch while a claim() for the station is in flight."""

    count: int = 0
    seen: list[int] = field(default_factory=list)


class Claims:
    """This node's claims (and orphans); the coordinator starts a session per lease with ``new_session``."""

    def __init__(
        self,
        etcd: EtcdClient,
        keys: Keys,
        node_id: str,
        domain: FenceDomain,
        observer: ClusterObserver,
        *,
        attempts: int,
        batch: int,
        retry_delay: float,
    ) -> None:
        self._etcd = etcd
        self._keys = keys
        self._node_id = node_id
        self._domain = domain
        self._observer = observer
        self._attempts = attempts
        self._batch = max(1, min(batch, 100))  # etcd's default --max-txn-ops is 128
        self._retry_delay = retry_delay
        self._puts: OwnerPutBatcher | None = None
        self._deletes: OwnerDeleteBatcher | None = None
        self._claims: dict[str, Claim] = {}
        # Claims made under a lease we lost: still served (Postgres fences their writes), re-claimed on rejoin.
        self._orphans: dict[str, Claim] = {}
        self._orphaned = trio.Event()
        self._inflight: dict[str, _Inflight] = {}
        # Every station's owner key as last seen (read once per session, then kept by the owners watch): mod
        # revision and node. A hint only, never trusted: a claim's first put is guarded on it, so taking over a
        # station from a dead replica is one txn per batch instead of a failed create-if-absent and a retry (a
        # reconnect storm is all takeovers). A stale hint costs what no hint costs: the put fails, reads the key,
        # retries on what it read.
        self._owner_hints: dict[str, tuple[int, str]] = {}
        self.lost: Hooks[Claim] = Hooks()

    @property
    def held(self) -> dict[str, Claim]:
        return {**self._orphans, **self._claims}

    @property
    def queued(self) -> int:
        return self._puts.queued if self._puts is not None else 0

    def new_session(self, lease: int) -> None:
        """Owner puts for ``lease`` from now on (sent once ``run_puts`` runs in the session's nursery)."""
        self.end_session()
        self._puts = OwnerPutBatcher(self._etcd, lease, self._keys.domain, max_batch=self._batch)
        self._deletes = OwnerDeleteBatcher(self._etcd, max_batch=self._batch)

    async def run_puts(self) -> None:
        """Send this session's owner puts and releases' deletes until cancelled (or the session ends)."""
        puts, deletes = self._puts, self._deletes
        assert puts is not None and deletes is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(deletes.run)
            await puts.run()
            nursery.cancel_scope.cancel()

    def end_session(self) -> None:
        """The lease is gone: queued puts fail; our claims become orphans (re-claimed in the next session)."""
        if self._puts is not None:
            self._puts.abort()
            self._puts = None
        if self._deletes is not None:
            self._deletes.abort()  # their callers delete one by one (see _delete)
            self._deletes = None
        self._orphans.update(self._claims)
        self._claims.clear()

    def clear(self) -> None:
        """Draining: no session, no claims."""
        self.end_session()
        self._claims.clear()
        self._orphans.clear()

    def _value(self, connection_id: str) -> bytes:
        return orjson.dumps({"node_id": self._node_id, "connection_id": connection_id})

    async def _put(self, lease: int, put: OwnerPut) -> PutOutcome:
        puts = self._puts
        if puts is None or puts.lease != lease:
            raise EtcdUnavailable("lease lost while claiming")
        return await puts.put(put)

    # -- claim and release ------------------------------------------------------------------------

    async def claim(self, station_id: str, connection_id: str, lease: int) -> Claim:
        started = time.perf_counter()
        try:
            with self._watching(station_id) as inflight:
                revision, domain, took_over = await self._claim_txn(station_id, connection_id, lease)
                if any(rev > revision for rev in inflight.seen):
                    self._observer.claim_finished(time.perf_counter() - started, "superseded")
                    raise ClaimSuperseded(f"station {station_id}: a newer claim landed during ours")
                if self._puts is None or self._puts.lease != lease:
                    raise EtcdUnavailable("lease lost while claiming")
                epoch = await self._domain.epoch(domain)
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
        key, value = self._keys.owner(station_id), self._value(connection_id)
        # First try: take over the key as last seen (create-if-absent when none was seen).
        expected, node = self._owner_hints.get(station_id, (0, self._node_id))
        took_over = node != self._node_id
        for _ in range(self._attempts):
            put = await self._put(lease, OwnerPut(key, value, expected))
            if put.revision:
                return put.revision, put.domain, took_over
            kv = put.current
            if kv is None:
                expected = 0
            else:
                expected = kv.mod_revision  # compare-on-mod-revision takeover of exactly what we saw
                took_over = decode(kv.value).get("node_id") != self._node_id
        raise EtcdError(f"station {station_id}: claim lost {self._attempts} races in a row")

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
        await self._delete(self._keys.owner(station_id), current.revision)

    async def _delete(self, key: str, revision: int) -> None:
        """Delete the owner key if its revision is still ``revision``: batched with other releases while a
        session runs, else (between sessions, or its batcher stopped) in a txn of its own."""
        deletes = self._deletes
        if deletes is not None and deletes.running:
            try:
                await deletes.delete(key, revision)
                return
            except BatcherClosed:
                pass
        await self._etcd.txn([Compare.mod_revision(key, "=", revision)], [Op.delete(key)])

    def _lose(self, claim: Claim) -> None:
        if self._claims.get(claim.station_id) == claim:
            del self._claims[claim.station_id]
        if self._orphans.get(claim.station_id) == claim:
            del self._orphans[claim.station_id]
        self._observer.claim_lost(claim.station_id)
        self.lost.fire(claim)

    def _orphan(self, claim: Claim) -> None:
        """The claim's key is gone but nobody else claimed the station: keep serving it and claim it again."""
        del self._claims[claim.station_id]
        self._orphans[claim.station_id] = claim
        self._orphaned.set()

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

    # -- the owners watch -------------------------------------------------------------------------

    async def read_owner_hints(self) -> None:
        """All owner keys once per session (the watch, from the join revision on, keeps them): see
        ``_owner_hints``. Not part of joining: on a slow etcd the read must not eat into the first lease period,
        and without it a takeover only costs a retry."""
        try:
            result = await self._etcd.get(self._keys.owners, prefix=True)
        except EtcdError as exc:
            log.info("owner hints not read: %r", exc)
            return
        for kv in result.kvs:
            self._hint(kv.key, kv.mod_revision, kv.value)

    def _hint(self, key: bytes, revision: int, value: bytes | None) -> None:
        """Record an owner key's put (``value``) or delete (None) unless a newer one is recorded already."""
        station_id = self._keys.station_of(key)
        known = self._owner_hints.get(station_id)
        if known is not None and known[0] >= revision:
            return
        if value is None:
            self._owner_hints.pop(station_id, None)
        else:
            self._owner_hints[station_id] = (revision, sys.intern(str(decode(value).get("node_id"))))

    def on_owner_event(self, event: WatchEvent) -> None:
        station_id = self._keys.station_of(event.kv.key)
        revision = event.kv.mod_revision
        self._hint(event.kv.key, revision, None if event.type == "DELETE" else event.kv.value)
        inflight = self._inflight.get(station_id)
        if inflight is not None:
            inflight.seen.append(revision)
        claim = self._claims.get(station_id)
        if claim is None or revision <= claim.revision:
            return
        if event.type == "DELETE":
            self._orphan(claim)  # our lease expired or was revoked (or someone deleted the key): we still serve it
            return
        owner = decode(event.kv.value)
        if owner.get("node_id") != self._node_id or owner.get("connection_id") != claim.connection_id:
            self._lose(claim)

    async def _resync(self) -> int:
        """After a compaction gap: drop every claim whose key changed; returns the read revision."""
        result = await self._etcd.get(self._keys.owners, prefix=True)
        current = {self._keys.station_of(kv.key): kv for kv in result.kvs}
        self._owner_hints = {}  # deletes in the gap are not known: start over from this read
        for read in result.kvs:
            self._hint(read.key, read.mod_revision, read.value)
        for station_id, claim in list(self._claims.items()):
            kv = current.get(station_id)
            if kv is None:
                self._orphan(claim)
            elif kv.mod_revision != claim.revision:
                self._lose(claim)
        return result.revision

    async def watch_owners(self, start_revision: int, on_event: Callable[[WatchEvent], None]) -> None:
        """Feed every owner-key event to ``on_event`` (normally ``on_owner_event``) until cancelled."""
        revision = start_revision
        while True:
            try:
                async with self._etcd.watch(self._keys.owners, prefix=True, start_revision=revision) as events:
                    async for event in events:
                        revision = event.kv.mod_revision + 1
                        on_event(event)
            except EtcdCompacted:
                log.warning("owners watch compacted at %d: re-reading", revision)
                try:
                    revision = await self._resync() + 1
                except EtcdError:
                    await trio.sleep(0.2)
            except EtcdError as exc:
                log.debug("owners watch: %r", exc)
                await trio.sleep(0.2)

    # -- orphans ----------------------------------------------------------------------------------

    async def reclaim_orphans(self, lease: int, then: Callable[[], Awaitable[None]]) -> None:
        """After a rejoin (or a key that vanished): claim the stations we still serve again under ``lease``, and
        lose those that another connection claimed meanwhile; then ``then()`` (revoke the old lease)."""
        while True:
            self._orphaned = trio.Event()
            while self._orphans:
                async with trio.open_nursery() as nursery:
                    for orphan in list(self._orphans.values()):
                        nursery.start_soon(self._reclaim, orphan, lease)
                if self._orphans:  # etcd failed some: try again shortly, in this session
                    await trio.sleep(self._retry_delay)
            await then()
            await self._orphaned.wait()

    async def _reclaim(self, orphan: Claim, lease: int) -> None:
        station_id = orphan.station_id
        key, value = self._keys.owner(station_id), self._value(orphan.connection_id)
        try:
            with self._watching(station_id) as inflight:
                put = await self._put(lease, OwnerPut(key, value, 0, mine=True))
                if not put.revision and put.current is None:
                    put = await self._put(lease, OwnerPut(key, value, 0))  # our key went with the old lease
                epoch = await self._domain.epoch(put.domain) if put.revision else 0
                superseded = any(rev > put.revision for rev in inflight.seen) if put.revision else False
        except Exception as exc:
            log.info("re-claiming %s failed: %r", station_id, exc)
            return
        if self._orphans.get(station_id) is not orphan:  # released, or claimed by a new connection, meanwhile
            if put.revision:  # the key we just moved must not outlive the connection
                with contextlib.suppress(EtcdError):
                    await self._delete(key, put.revision)
            return
        del self._orphans[station_id]
        if put.revision and not superseded:
            self._claims[station_id] = Claim(station_id, orphan.connection_id, put.revision, epoch)
        else:
            self._observer.claim_lost(station_id)
            self.lost.fire(orphan)
