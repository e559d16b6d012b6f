"""The device model's read side, for the REST API: variables (filterable, paged) and the reports behind them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ocpp.v201.enums import AttributeEnumType

from csms.storage import Database

_ATTRIBUTE_ORDER = tuple(a.value for a in AttributeEnumType)  # Actual, Target, MinSet, MaxSet


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _variable_json(row: Any) -> dict[str, Any]:
    component: dict[str, Any] = {"name": row["component"]}
    if row["component_instance"]:
        component["instance"] = row["component_instance"]
    if row["evse_id"] is not None:
        evse = {"id": row["evse_id"]}
        if row["connector_id"] is not None:
            evse["connectorId"] = row["connector_id"]
        component["evse"] = evse
    variable: dict[str, Any] = {"name": row["variable"]}
    if row["variable_instance"]:
        variable["instance"] = row["variable_instance"]
    attributes = row["attributes"] or {}
    ordered = sorted(attributes, key=lambda kind: (*_ATTRIBUTE_ORDER, kind).index(kind))
    return {
        "id": row["id"],
        "component": component,
        "variable": variable,
        "characteristics": row["characteristics"],
        "attributes": [attributes[kind] for kind in ordered],
        "report_request_id": row["report_request_id"],
        "updated_at": _iso(row["updated_at"]),
    }


def _complete(seq_nos: list[int], last: int | None) -> bool:
    """The last part (tbc = false) came, and every part before it."""
    return last is not None and set(range(last + 1)) <= set(seq_nos)


class DeviceModelViews:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def variables(
        self, station_id: str, *, component: str | None, variable: str | None, limit: int, after: int | None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """In the order the station first reported them; the `after` cursor of the next page (None: last)."""
        rows = await self._db.fetch(
            "SELECT id, component, component_instance, evse_id, connector_id, variable, variable_instance,"
            " characteristics, attributes, report_request_id, updated_at FROM device_variables"
            " WHERE station_id = $1 AND ($2::text IS NULL OR component = $2) AND ($3::text IS NULL OR variable = $3)"
            " AND ($4::bigint IS NULL OR id > $4) ORDER BY id LIMIT $5",
            station_id,
            component,
            variable,
            after,
            limit,
        )
        items = [_variable_json(row) for row in rows]
        return items, items[-1]["id"] if len(items) == limit else None

    async def reports(self, station_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The latest reports, newest request first, with how far their parts got."""
        rows = await self._db.fetch(
            "SELECT request_id, action, command_id, request, answer, seq_nos, last_seq_no, variables, generated_at,"
            " requested_at, updated_at FROM device_model_reports WHERE station_id = $1"
            " ORDER BY coalesce(requested_at, updated_at) DESC LIMIT $2",
            station_id,
            limit,
        )
        return [
            {
                "request_id": row["request_id"],
                "action": row["action"],
                "command_id": row["command_id"],
                "request": row["request"],
                "answer": row["answer"],
                "parts": len(row["seq_nos"]),
                "last_seq_no": row["last_seq_no"],
                "complete": _complete(row["seq_nos"], row["last_seq_no"]),
                "variables": row["variables"],
                "generated_at": _iso(row["generated_at"]),
                "requested_at": _iso(row["requested_at"]),
                "updated_at": _iso(row["updated_at"]),
            }
            for row in rows
        ]
