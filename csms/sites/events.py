"""The sites module's events (csms.outbox catalogue), written in the same transaction as the change.

A site is its own aggregate (aggregate id = site id); ``subject`` is empty because a site spans stations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from csms.outbox import Event
from csms.sites.model import SiteSpec

if TYPE_CHECKING:  # the store writes these events: a runtime import would be circular
    from csms.sites.store import Allocation, Round


def _site_event(name: str, site_id: str, **data: Any) -> Event:
    return Event(name, "site", site_id, None, {"site_id": site_id, **data})


def defined(spec: SiteSpec, created: bool) -> Event:
    return _site_event(
        "site.defined.v1",
        spec.site_id,
        created=created,
        limit=spec.limit,
        unit=spec.unit,
        voltage=spec.voltage,
        failsafe=spec.failsafe,
        station_ids=[s.station_id for s in spec.stations],
    )


def overridden(site_id: str, limit: float, until: datetime) -> Event:
    return _site_event("site.limit_overridden.v1", site_id, limit=limit, until=until.isoformat())


def allocations_changed(
    site_id: str, fence: int, rows: Sequence[Allocation] = (), removed: Sequence[str] = ()
) -> Event:
    allocations = [{"station_id": r.station_id, "connector_id": r.connector_id, **asdict(r.held)} for r in rows]
    return _site_event(
        "site.allocations_changed.v1",
        site_id,
        fence_token=fence,
        allocations=allocations,
        removed_station_ids=list(removed),
    )


def round_computed(site_id: str, fence: int, r: Round) -> Event:
    return _site_event(
        "site.round_computed.v1",
        site_id,
        fence_token=fence,
        computed_by=r.computed_by,
        computed_at=r.computed_at.isoformat(),
        limit_now=r.limit_now,
        allocated=r.allocated,
        measured=r.measured,
        charging=r.charging,
        capped=r.capped,
    )
