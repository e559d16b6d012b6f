"""Read side of the operations state, for the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from csms.storage import Database


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


class OperationsViews:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def reservations(
        self, *, station_id: str | None, status: str | None, limit: int, before: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first, and the `before` cursor of the next page (None on the last one)."""
        rows = await self._db.fetch(
            f"SELECT row_id, {_RESERVATION} FROM reservations"
            " WHERE ($1::text IS NULL OR station_id = $1) AND ($2::text IS NULL OR status = $2)"
            " AND ($3::bigint IS NULL OR row_id < $3) ORDER BY row_id DESC LIMIT $4",
            station_id,
            status,
            before,
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
        """Everything operators set up on one station, in one read transaction."""

        async def read(conn: Any) -> dict[str, Any]:
            profiles = await conn.fetch(
                "SELECT charging_profile_id, connector_id, stack_level, purpose, kind, transaction_id, profile,"
                " installed_at, protocol, evse_id, station_tx_id FROM charging_profiles WHERE station_id = $1"
                " ORDER BY evse_id, connector_id, stack_level",
                station_id,
            )
            configuration = await conn.fetch(
                "SELECT key, value, readonly, known, reported_at FROM station_configuration WHERE station_id = $1"
                " ORDER BY key",
                station_id,
            )
            availability = await conn.fetch(
                "SELECT 'ocpp1.6' AS protocol, 0 AS evse_id, connector_id, availability, answer, requested_at"
                " FROM connector_availability WHERE station_id = $1 UNION ALL"
                " SELECT 'ocpp2.0.1', evse_id, connector_id, availability, answer, requested_at"
                " FROM evse_availability WHERE station_id = $1 ORDER BY protocol, evse_id, connector_id",
                station_id,
            )
            jobs = await conn.fetch(
                "SELECT id, kind, location, file_name, status, command_id, created_at, updated_at, protocol,"
                " request_id FROM station_jobs WHERE station_id = $1 ORDER BY id DESC LIMIT 20",
                station_id,
            )
            local_list = await conn.fetchrow(
                "SELECT sent_version, reported_version, update_type, synced_at, reported_at"
                " FROM local_list_versions WHERE station_id = $1",
                station_id,
            )
            schedules = await conn.fetch(
                "SELECT connector_id, duration, result, received_at, evse_id FROM composite_schedules"
                " WHERE station_id = $1 ORDER BY id DESC LIMIT 5",
                station_id,
            )
            remote_starts = await conn.fetch(
                "SELECT remote_start_id, id_token, id_token_type, evse_id, command_id, status, transaction_id,"
                " requested_at, linked_at FROM remote_start_requests WHERE station_id = $1 ORDER BY id DESC LIMIT 20",
                station_id,
            )
            return {
                "charging_profiles": [_plain(r) for r in profiles],
                "configuration": [_plain(r) for r in configuration],
                "availability": [_plain(r) for r in availability],
                "jobs": [_plain(r) for r in jobs],
                "local_list": _plain(local_list) if local_list else None,
                "composite_schedules": [_plain(r) for r in schedules],
                "remote_starts": [_plain(r) for r in remote_starts],
            }

        return await self._db.transaction(read)

    async def local_list_version(self, station_id: str) -> int:
        value = await self._db.fetchval(
            "SELECT greatest(coalesce(sent_version, 0), coalesce(reported_version, 0)) FROM local_list_versions"
            " WHERE station_id = $1",
            station_id,
        )
        return int(value or 0)

    async def last_list_sync(self, station_id: str) -> datetime | None:
        return await self._db.fetchval("SELECT synced_at FROM local_list_versions WHERE station_id = $1", station_id)
