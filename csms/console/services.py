"""The console's dependencies: the same module faces the REST API uses, plus the live hub and sessions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from cluster import Coordinator
from csms.api.command_payloads import CommandPayloads
from csms.authorization import IdTagStore
from csms.commands import CommandService
from csms.console.audit import ConsoleAudit
from csms.console.brief_cache import BriefCache
from csms.console.live import LiveHub
from csms.console.session import Sessions
from csms.operations import OperationsViews
from csms.sites import SiteService
from csms.stations import FleetViews, StationRegistry
from csms.transactions import SessionViews


@dataclass
class ConsoleServices:
    registry: StationRegistry
    fleet: FleetViews
    sessions: SessionViews
    id_tags: IdTagStore
    coordinator: Coordinator
    commands: CommandService
    payloads: CommandPayloads
    operations: OperationsViews
    audit: ConsoleAudit
    hub: LiveHub
    auth: Sessions
    http: httpx.AsyncClient  # other replicas' /readyz for the cluster page (drain state)
    readiness: Callable[[], Awaitable[dict[str, bool]]]
    sites: SiteService | None = None
    aggregates: BriefCache = field(default_factory=BriefCache)  # owned counts, moves, fleet counts (brief TTL)

    async def owned_counts(self) -> dict[str, int]:
        return await self.aggregates.get("owned", self.coordinator.owned_counts)


async def live_nodes(coordinator: Coordinator) -> list[str]:
    return [node.node_id for node in await coordinator.nodes()]
