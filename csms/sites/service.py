"""The sites module's face for the composition root and the API: definitions, overrides, and the rounds.

Every replica runs a SiteService; each site is computed by the one replica holding its leased key (cluster's
LeasedSingletons), under a fence token taken in Postgres when it starts (see docs/design/site-fencing.md).
That replica listens to the change feed while it computes sites, so a session that starts or ends on any
replica wakes the site's round at once; otherwise rounds run every ``interval``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import trio

from cluster import Coordinator, LeasedSingletons
from csms.sites.balancer import BalancerSettings, SiteBalancer, SiteInputs, SiteObserver
from csms.sites.fences import SiteFences
from csms.sites.model import SiteSpec
from csms.sites.store import SiteStore
from csms.storage import Database

CHANNEL = "csms_changes"  # storage's change feed
GROUP = "sites"  # the singletons' key group

log = logging.getLogger(__name__)


class SiteService:
    def __init__(
        self,
        db: Database,
        coordinator: Coordinator,
        inputs: SiteInputs,
        settings: BalancerSettings,
        *,
        poll_interval: float = 1.0,
        observer: SiteObserver | None = None,
    ) -> None:
        self._db = db
        self._coordinator = coordinator
        self.store = SiteStore(db)
        self.fences = SiteFences(db)
        self.balancer = SiteBalancer(self.store, inputs, coordinator.node_id, settings, observer)
        self._singletons = LeasedSingletons(
            coordinator, GROUP, self.store.site_ids, self._compute, interval=poll_interval
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self._singletons.run)
            nursery.start_soon(self._listen_while_computing)
            task_status.started()

    async def _compute(self, site_id: str) -> None:
        """Take the site's next token, then make sure the key is still ours: a replica paused between taking the
        key and the token (past its lease) finds the key gone and never uses its token; any later holder takes a
        newer one. Only then compute."""
        fence = await self.fences.take(site_id, self._coordinator.node_id)
        if (await self._coordinator.key_holders(GROUP)).get(site_id) != self._coordinator.node_id:
            log.info("site key lost while taking its token", extra={"site_id": site_id, "fence": fence})
            return
        await self.balancer.compute(site_id, fence)

    async def _listen_while_computing(self) -> None:
        """LISTEN only while this replica computes a site: the feed carries every station's changes."""
        while True:
            await self.balancer.wait_computing(True)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    lambda: self._db.listen(CHANNEL, self.balancer.note, on_reconnect=self.balancer.wake_all)
                )
                await self.balancer.wait_computing(False)
                nursery.cancel_scope.cancel()

    async def put(self, spec: SiteSpec) -> bool:
        created = await self.store.put(spec)
        self._singletons.poke()
        return created

    async def set_limit(self, site_id: str, limit: float, until: datetime) -> bool:
        """A live override until `until`; False if the site does not exist."""
        return await self.store.set_override(site_id, limit, until)

    async def view(self, site_id: str) -> dict[str, Any] | None:
        return await self.store.view(site_id)
