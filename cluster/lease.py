"""Keeping the node's etcd lease alive, and declaring it lost *before* etcd can expire it.

The lease is renewed every TTL/3; if a renewal has not succeeded by the local deadline (TTL minus a margin,
measured from when the last successful renewal was *sent*), the lease is declared lost: etcd may consider it
expired at any moment after that, so the node must stop acting on it first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from cluster.errors import EtcdError, EtcdLeaseNotFound
from cluster.etcd_client import EtcdClient

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(self, etcd: EtcdClient, ttl: float, margin: float | None) -> None:
        self._etcd = etcd
        self.ttl = float(ttl)
        self.margin = margin if margin is not None else max(0.25, min(1.0, self.ttl * 0.2))
        self.lease_id: int | None = None
        self.granted_ttl = self.ttl
        self._stale: int | None = None
        self._last_renew_sent = 0.0
        self._deadline = 0.0

    def start(self, lease_id: int, ttl: float, sent: float) -> None:
        """A lease granted by a request sent at ``sent`` (trio time) is now the node's."""
        self.granted_ttl = float(ttl)
        self._last_renew_sent = sent
        self._deadline = sent + ttl - self.margin
        self.lease_id = lease_id

    def lose(self) -> None:
        """Stop using the lease (it is revoked once the next session has re-claimed what it served)."""
        if self.lease_id is not None:
            self._stale, self.lease_id = self.lease_id, None

    async def revoke_stale(self) -> None:
        if self._stale is not None:
            stale, self._stale = self._stale, None
            await self.revoke_quietly(stale)

    async def revoke_quietly(self, lease_id: int) -> None:
        try:
            await self._etcd.lease_revoke(lease_id)
        except EtcdError as exc:
            log.debug("revoking lease %x: %r", lease_id, exc)

    async def keep_alive(self, on_lost: Callable[[str], None]) -> None:
        """Renew until the lease is lost; then call ``on_lost(reason)`` and return."""
        interval = self.granted_ttl / 3
        retry = min(0.2, interval / 4)
        lease = self.lease_id
        assert lease is not None
        while True:
            await trio.sleep_until(self._last_renew_sent + interval)
            renewed = False
            with trio.move_on_at(self._deadline):
                while not renewed:
                    sent = trio.current_time()
                    budget = max(0.05, min(self._etcd.timeout, self._deadline - sent))
                    try:
                        with trio.fail_after(budget):
                            ttl = await self._etcd.lease_keepalive(lease)
                    except EtcdLeaseNotFound:
                        on_lost("lease expired in etcd")
                        return
                    except (EtcdError, trio.TooSlowError) as exc:
                        log.debug("keepalive failed: %r", exc)
                        await trio.sleep(retry)
                        continue
                    except Exception:
                        # A bug here must not kill the replica: give up the lease (the safe state), rejoin afresh.
                        log.exception("keepalive crashed")
                        on_lost("keepalive crashed")
                        return
                    self._last_renew_sent = sent
                    self._deadline = sent + ttl - self.margin
                    renewed = True
            if not renewed:
                on_lost("lease not renewed before its deadline")
                return
