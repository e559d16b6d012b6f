"""Run a job on at most one node of the cluster at a time, per name: an etcd lease per job.

Each job has its own lease (not the node's), so a job is handed over alone: when its holder dies the key
expires with the lease and a waiting node, watching the key, takes over within one TTL. The holder renews every
TTL/3 and cancels the job as soon as it cannot prove the lease alive before its local deadline (TTL minus a
margin), before etcd could give the key to someone else. Jobs must still tolerate a short overlap with a
deposed holder (a paused process); the CSMS's exporters do, by message ids and a cursor that never moves back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import trio

from cluster.errors import EtcdError, EtcdLeaseNotFound
from cluster.etcd_client import EtcdClient
from cluster.txn import Compare, Op

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


async def run_exclusive(client: EtcdClient, key: str, holder: str, job: Job, *, ttl: float) -> None:
    """Until cancelled: win ``key`` (bound to a fresh lease), run ``job`` while the lease lives, repeat.
    A job that returns or raises is restarted after a pause, still under the same lease."""
    margin = max(0.25, min(1.0, ttl * 0.2))
    while True:
        try:
            lease = await client.lease_grant(ttl)
        except EtcdError as exc:
            log.debug("exclusive %s: lease grant failed: %r", key, exc)
            await trio.sleep(0.5)
            continue
        try:
            await _campaign(client, key, holder, job, lease.id, float(lease.ttl or ttl), margin)
        except EtcdError as exc:
            log.debug("exclusive %s: %r", key, exc)
            await trio.sleep(0.2)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2.0), contextlib.suppress(EtcdError):
                await client.lease_revoke(lease.id)  # hand the job over now, not after a TTL


async def _campaign(client: EtcdClient, key: str, holder: str, job: Job, lease: int, ttl: float, margin: float) -> None:
    """Returns when the lease is gone (the caller grants a new one)."""
    deadline = trio.current_time() + ttl - margin
    while True:
        result = await client.txn([Compare.create_revision(key, "=", 0)], [Op.put(key, holder, lease=lease)], [])
        if result.succeeded:
            log.info("exclusive %s: held by %s", key, holder)
            await _hold(client, key, job, lease, ttl, margin, deadline)
            return
        # Someone holds it: wait for its key to go (watch), renewing our own lease meanwhile.
        with trio.move_on_after(ttl / 3):
            async with client.watch(key, start_revision=result.revision + 1) as events:
                async for event in events:
                    if event.type == "DELETE":
                        break
        sent = trio.current_time()
        try:
            renewed = await client.lease_keepalive(lease)
        except EtcdLeaseNotFound:
            return
        deadline = sent + renewed - margin


async def _hold(client: EtcdClient, key: str, job: Job, lease: int, ttl: float, margin: float, deadline: float) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_supervise, key, job)
        while True:
            await trio.sleep(ttl / 3)
            renewed = False
            with trio.move_on_at(deadline):
                while not renewed:
                    sent = trio.current_time()
                    try:
                        ttl_left = await client.lease_keepalive(lease)
                    except EtcdLeaseNotFound:
                        break
                    except EtcdError:
                        await trio.sleep(0.1)
                        continue
                    deadline = sent + ttl_left - margin
                    renewed = True
            if not renewed:
                log.warning("exclusive %s: lease not renewed in time; stopping the job", key)
                nursery.cancel_scope.cancel()
                return


async def _supervise(key: str, job: Job) -> None:
    while True:
        try:
            await job()
        except Exception:
            log.exception("exclusive job %s failed; restarting", key)
        await trio.sleep(1.0)
