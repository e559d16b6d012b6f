"""Read side of the operations state, for the REST API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from csms.storage import Database, given


def _plain(row: Any) -> dict[str, Any]:
    data = dict(row)
    for key, value in data.items():
        if isinstance(value, datetime):
            data[key] = value.isoformat()
        elif key in ("profile", "result") and isinstance(value, str):
            data[key] = orjson.loads(value)
    return data


# Both versions' reservations in one shape; 2.0.1 adds the EVSE, the token type and a connector type.
_RESERVATION = """station_id, reservation_id, connector_id, id_tag, parent_id_tag, expiry_date, status, transaction_id,
command_id, created_at, updated_at, protocol, evse_id, id_token_type, connector_type"""


_STATE_LISTS = ("charging_profiles", "configuration", "availability", "jobs", "composite_schedules", "remote_starts")
# One statement, each list a JSON array built in its order (ids used only for order are dropped from the rows).
_STATION_STATE = """
SELECT
  (SELECT coalesce(json_agg(x ORDER BY x.evse_id, x.connector_id, x.stack_level), '[]') FROM (
     SELECT charging_profile_id, connector_id, stack_level, purpose, kind, transaction_id, profile, installed_at,
            protocol, evse_id, station_tx_id FROM charging_profiles WHERE station_id = $1) x) AS charging_profiles,
  (SELECT coalesce(json_agg(x ORDER BY x.key), '[]') FROM (
     SELECT key, value, readonly, known, reported_at FROM station_configuration WHERE station_id = $1) x)
     AS configuration,
  (SELECT coalesce(json_agg(x ORDER BY x.protocol, x.evse_id, x.connector_id), '[]') FROM (
     SELECT 'ocpp1.6' AS protocol, 0 AS evse_id, connector_id, availability, answer, requested_at
     FROM connector_availability WHERE station_id = $1 UNION ALL
     SELECT 'ocpp2.0.1', evse_id, connector_id, availability, answer, requested_at
     FROM evse_availability WHERE station_id = $1) x) AS availability,
  (SELECT coalesce(json_agg(x ORDER BY x.id DESC), '[]') FROM (
     SELECT id, kind, location, file_name, status, command_id, created_at, updated_at, protocol, request_id
     FROM station_jobs WHERE station_id = $1 ORDER BY id DESC LIMIT 20) x) AS jobs,
  (SELECT to_json(x) FROM (
     SELECT sent_version, reported_version, update_type, synced_at, reported_at
     FROM local_list_versions WHERE station_id = $1) x) AS local_list,
  (SELECT coalesce(json_agg(to_jsonb(x) - 'id' ORDER BY x.id DESC), '[]') FROM (
     SELECT id, connector_id, duration, result, received_at, evse_id FROM composite_schedules
     WHERE station_id = $1 ORDER BY id DESC LIMIT 5) x) AS composite_schedules,
  (SELECT coalesce(json_agg(to_jsonb(x) - 'id' ORDER BY x.id DESC), '[]') FROM (
     SELECT id, remote_start_id, id_token, id_token_type, evse_id, command_id, status, transaction_id,
            requested_at, linked_at FROM remote_start_requests WHERE station_id = $1 ORDER BY id DESC LIMIT 20) x)
     AS remote_starts
"""


class OperationsViews:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def reservations(
        self, *, station_id: str | None, status: str | None, limit: int, before: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first, and the `before` cursor of the next page (None on the last one)."""
        args: list[Any] = []
        where = given(((station_id, "station_id = ${}"), (status, "status = ${}"), (before, "row_id < ${}")), args)
        rows = await self._db.fetch(
            f"SELECT row_id, {_RESERVATION} FROM reservations WHERE {where}"
            f" ORDER BY row_id DESC LIMIT ${len(args) + 1}",
            *args,
            limit,
        )
        items = [_plain(r) for r in rows]
        cursors = [item.pop("row_id") for item in items]
        return items, cursors[-1] if len(items) == limit else None

    async def reservations_with_id(self, reservation_id: int, station_id: str | None) -> list[dict[str, Any]]:
        """A reservationId is unique per station only (operators choose them), so this may find several."""
        rows = await self._db.fetch(
            f"SELECT {_RESERVATION} FROM reservations WHERE reservation_id = $1"
            " AND ($2::text IS NULL OR station_id = $2) ORDER BY station_id LIMIT 10",
            reservation_id,
            station_id,
        )
        return [_plain(r) for r in rows]

    async def next_reservation_id(self) -> int:
        """For a ReserveNow without reservationId: from one Postgres sequence, skipping ids on record."""
        return int(await self._db.fetchval("SELECT next_reservation_id()"))

    async def next_request_id(self) -> int:
        """For a 2.0.1 requestId / remoteStartId the operator left out: one sequence for the cluster."""
        return int(await self._db.fetchval("SELECT nextval('operation_request_ids')"))

    async def station_state(self, station_id: str) -> dict[str, Any]:
        """Everything operators set up on one station, in one statement (one snapshot, one round trip: the
        console's station page reads it on every live update)."""
        row = await self._db.fetchrow(_STATION_STATE, station_id)
        assert row is not None
        state = {key: row[key] for key in _STATE_LISTS}
        state["local_list"] = row["local_list"]
        for item in [*(i for key in _STATE_LISTS for i in state[key]), state["local_list"] or {}]:
            for key, value in item.items():
                if key.endswith("_at") and isinstance(value, str):
                    item[key] = datetime.fromisoformat(value).astimezone(UTC).isoformat()
                elif key in ("profile", "result") and isinstance(value, str):
                    item[key] = orjson.loads(value)
        return state

    async def local_list_version(self, station_id: str) -> int:
        value = await self._db.fetchval(
            "SELECT greatest(coalesce(sent_version, 0), coalesce(reported_version, 0)) FROM local_list_versions"
            " WHERE station_id = $1",
            station_id,
        )
        return int(value or 0)

    async def last_list_sync(self, station_id: str) -> datetime | None:
        return await self._db.fetchval("SELECT synced_at FROM local_list_versions WHERE station_id = $1", station_id)
