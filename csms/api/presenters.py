"""How domain records read over HTTP (and in the console): the domain modules hand over plain values."""

from __future__ import annotations

from typing import Any

from cluster import Coordinator
from csms.authorization import IdTag


async def with_owners(coordinator: Coordinator, stations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`connected` and `owner_node` of each station (one etcd read for the lot)."""
    owners = await coordinator.owners_of([station["id"] for station in stations])
    for station in stations:
        owner = owners.get(station["id"])
        station["connected"] = owner is not None
        station["owner_node"] = owner.node_id if owner else None
    return stations


def id_tag_json(tag: IdTag) -> dict[str, Any]:
    """An id tag as the API and the console show it (`type` is the OCPP 2.0.1 IdTokenEnumType)."""
    return {
        "id_tag": tag.id_tag,
        "status": tag.status,
        "expiry_date": tag.expiry_date.isoformat() if tag.expiry_date else None,
        "parent_id_tag": tag.parent_id_tag,
        "type": tag.token_type,
    }
