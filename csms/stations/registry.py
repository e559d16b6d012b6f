"""The station registry: the only code that touches the stations module's tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from csms.outbox import Event, emit, event_statement
from csms.stations.security_store import SecurityStore
from csms.storage import Connection, Database, Fence, Statement

MIGRATIONS = Path(__file__).parent / "migrations"

_STATION_COLUMNS = """id, password_hash, boot_status, description, auto_registered, vendor, model, serial_number,
firmware_version, iccid, imsi, meter_type, meter_serial, last_boot_status, last_boot_at, last_seen_at, created_at,
updated_at, protocol, last_boot_reason"""

_GET_STATION = f"""
SELECT {_STATION_COLUMNS}, (SELECT coalesce(json_agg(c ORDER BY c.evse_id, c.connector_id), '[]') FROM (
    SELECT nullif(evse_id, 0) AS evse_id, connector_id, status, error_code, info, vendor_id, vendor_error_code,
           station_timestamp, received_at, (status = 'Charging' OR charging_tx IS NOT NULL) AS charging
    FROM connector_status WHERE station_id = $1) c) AS connectors
FROM stations WHERE id = $1
"""

# Hot-path writes are plain statements: the group-commit writer merges each one across a batch.
_RECORD_BOOT = """
UPDATE stations SET vendor = $2, model = $3, serial_number = $4, firmware_version = $5, iccid = $6, imsi = $7,
    meter_type = $8, meter_serial = $9, last_boot_status = $10, last_boot_at = $11, last_seen_at = $11,
    last_boot_reason = $12
WHERE id = $1
"""
_PUT = """
INSERT INTO stations (id, password_hash, boot_status, description)
VALUES ($1, $2, $3, coalesce($4, ''))
ON CONFLICT (id) DO UPDATE SET
    password_hash = CASE WHEN $5 THEN EXCLUDED.password_hash ELSE stations.password_hash END,
    boot_status = CASE WHEN $6 THEN EXCLUDED.boot_status ELSE stations.boot_status END,
    description = coalesce($4, stations.description),
    auto_registered = false,
    updated_at = now()
RETURNING (xmax = 0)
"""
# Many stations at once; never backwards: a replica that lost a station may still flush an older time for it.
_TOUCH_MANY = """
UPDATE stations s SET last_seen_at = greatest(s.last_seen_at, v.seen)
FROM unnest($1::text[], $2::timestamptz[]) AS v(id, seen)
WHERE s.id = v.id
"""
_TOUCH_CHUNK = 500  # rows locked per statement: hot-path writes to the same rows never wait long
_INSERT_STATUS_HISTORY = """
INSERT INTO connector_status_history (station_id, connector_id, status, error_code, info, vendor_id,
    vendor_error_code, station_timestamp, received_at, evse_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""
# Set by the transaction charging now, cleared only by the same transaction (a late event of an older one that
# ended must not clear a newer one's). Connector 0: the event named only the EVSE.
_CHARGING_TX = """
UPDATE connector_status SET charging_tx = CASE WHEN $5 THEN $4 END
WHERE station_id = $1 AND evse_id = $2 AND ($3 = 0 OR connector_id = $3) AND ($5 OR charging_tx = $4)
"""
_UPSERT_STATUS = """
INSERT INTO connector_status (station_id, connector_id, status, error_code, info, vendor_id, vendor_error_code,
    station_timestamp, received_at, evse_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (station_id, evse_id, connector_id) DO UPDATE SET status = EXCLUDED.status,
    error_code = EXCLUDED.error_code, info = EXCLUDED.info, vendor_id = EXCLUDED.vendor_id,
    vendor_error_code = EXCLUDED.vendor_error_code,
    station_timestamp = EXCLUDED.station_timestamp, received_at = EXCLUDED.received_at
WHERE coalesce(EXCLUDED.station_timestamp, EXCLUDED.received_at)
   >= coalesce(connector_status.station_timestamp, connector_status.received_at)
"""
_INSERT_NOTIFICATION = (
    "INSERT INTO station_notifications (station_id, kind, status, received_at) VALUES ($1, $2, $3, $4)"
)
_RECORD_PROTOCOL = "UPDATE stations SET protocol = $2 WHERE id = $1 AND protocol IS DISTINCT FROM $2"
# A retried report (new message id, same content) has the same digest: kept once.
_INSERT_EVENT = """
INSERT INTO station_events (station_id, action, summary, payload, digest, received_at)
VALUES ($1, $2, $3, $4, md5($4::jsonb::text), $5)
ON CONFLICT ON CONSTRAINT station_events_once DO NOTHING
"""
_INSERT_DATA_TRANSFER = (
    "INSERT INTO data_transfers (station_id, vendor_id, message_id, data, answered, received_at)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)


@dataclass(frozen=True)
class BootInfo:
    """What a BootNotification says about a station, whatever the protocol version calls the fields."""

    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    firmware_version: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    meter_type: str | None = None
    meter_serial: str | None = None
    reason: str | None = None  # 2.0.1 BootReason; 1.6 has none


def _station_event(name: str, station_id: str, **data: Any) -> Event:
    return Event(name, "station", station_id, station_id, {"station_id": station_id, **data})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _station_json(row: Any) -> dict[str, Any]:
    data = {key: row[key] for key in row.keys() if key != "password_hash"}  # noqa: SIM118 (asyncpg Record)
    data["has_password"] = row["password_hash"] is not None
    for key in ("last_boot_at", "last_seen_at", "created_at", "updated_at"):
        data[key] = _iso(data[key])
    return data


def event(
    station_id: str, action: str, summary: str | None, payload: dict[str, Any], received_at: datetime
) -> list[Statement]:
    """Write-op builder: a station's report kept as sent (2.0.1 Notify*, security events, status reports)."""
    return [Statement(_INSERT_EVENT, (station_id, action, summary, payload, received_at))]


def charging(
    station_id: str, evse_id: int, connector_id: int, station_tx_id: str, is_charging: bool
) -> list[Statement]:
    """Write-op builder, 2.0.1: whether the transaction on an EVSE is charging (its chargingState), for the
    fleet's "charging". The EVSE's row exists once the station reported its status (2.0.1 stations do at boot)."""
    return [Statement(_CHARGING_TX, (station_id, evse_id, connector_id, station_tx_id, is_charging))]


def notification(station_id: str, kind: str, status: str, received_at: datetime) -> list[Statement]:
    """Write-op builder: a Firmware/DiagnosticsStatusNotification as the station sent it."""
    return [Statement(_INSERT_NOTIFICATION, (station_id, kind, status, received_at))]


class StationRegistry:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.security = SecurityStore(db)  # profiles, password rotation, revocations, security events

    async def credentials(self, station_id: str) -> tuple[bool, str | None]:
        """(known, password hash or None) for the handshake."""
        row = await self._db.fetchrow("SELECT password_hash FROM stations WHERE id = $1", station_id)
        return (False, None) if row is None else (True, row["password_hash"])

    async def auto_register(self, station_id: str) -> None:
        async def op(conn: Connection) -> None:
            created = await conn.fetchval(
                "INSERT INTO stations (id, auto_registered) VALUES ($1, true) ON CONFLICT (id) DO NOTHING"
                " RETURNING true",
                station_id,
            )
            if created:
                await emit(conn, _station_event("station.registered.v1", station_id))

        await self._db.transaction(op)

    async def get(self, station_id: str) -> dict[str, Any] | None:
        """The station and its connectors' last status, in one statement (one round trip, one snapshot)."""
        row = await self._db.fetchrow(_GET_STATION, station_id)
        if row is None:
            return None
        data = _station_json(row)
        for connector in data["connectors"]:
            for key in ("station_timestamp", "received_at"):
                if connector[key] is not None:
                    connector[key] = datetime.fromisoformat(connector[key]).astimezone(UTC).isoformat()
        return data

    async def page(self, *, limit: int = 100, after: str = "") -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            f"SELECT {_STATION_COLUMNS} FROM stations WHERE id > $1 ORDER BY id LIMIT $2", after, limit
        )
        return [_station_json(row) for row in rows]

    async def put(
        self,
        station_id: str,
        *,
        password_hash: str | None,
        set_password: bool,
        boot_status: str | None,
        set_boot_status: bool,
        description: str | None,
    ) -> bool:
        """Create or update; fields not given keep their value. Returns True if created."""

        async def op(conn: Connection) -> bool:
            created = await conn.fetchval(
                _PUT, station_id, password_hash, boot_status, description, set_password, set_boot_status
            )
            name = "station.registered.v1" if created else "station.updated.v1"
            await emit(conn, _station_event(name, station_id, **({} if created else {"deleted": False})))
            return bool(created)

        return await self._db.transaction(op)

    async def delete(self, station_id: str) -> bool:
        async def op(conn: Connection) -> bool:
            result = await conn.execute("DELETE FROM stations WHERE id = $1", station_id)
            if not result.endswith(" 1"):
                return False
            await emit(conn, _station_event("station.updated.v1", station_id, deleted=True))
            return True

        return await self._db.transaction(op)

    async def boot_policy(self, station_id: str) -> str | None:
        return await self._db.fetchval("SELECT boot_status FROM stations WHERE id = $1", station_id)

    async def protocol_of(self, station_id: str) -> str | None:
        """The subprotocol of the station's latest connection ("ocpp1.6", "ocpp2.0.1"); None: never connected."""
        return await self._db.fetchval("SELECT protocol FROM stations WHERE id = $1", station_id)

    async def protocols_of(self, station_ids: list[str]) -> dict[str, str]:
        """protocol_of for many stations in one query (stations never connected are absent)."""
        rows = await self._db.fetch(
            "SELECT id, protocol FROM stations WHERE id = ANY($1::text[]) AND protocol IS NOT NULL", station_ids
        )
        return {row["id"]: row["protocol"] for row in rows}

    async def record_protocol(self, fence: Fence, protocol: str) -> None:
        """At connect, under the new claim: a station may switch version between connections."""
        await self._db.write_statements([Statement(_RECORD_PROTOCOL, (fence.station_id, protocol))], fence=fence)

    async def last_boot_status(self, station_id: str) -> str | None:
        """What the station was last answered to a BootNotification (on any replica): None if it never booted."""
        return await self._db.fetchval("SELECT last_boot_status FROM stations WHERE id = $1", station_id)

    async def record_boot(self, fence: Fence, info: BootInfo, status: str, received_at: datetime) -> None:
        args = (
            fence.station_id,
            info.vendor,
            info.model,
            info.serial_number,
            info.firmware_version,
            info.iccid,
            info.imsi,
            info.meter_type,
            info.meter_serial,
            status,
            received_at,
            info.reason,
        )
        booted = _station_event(
            "station.booted.v1",
            fence.station_id,
            status=status,
            received_at=received_at.isoformat(),
            vendor=info.vendor,
            model=info.model,
            serial_number=info.serial_number,
            firmware_version=info.firmware_version,
            reason=info.reason,
        )
        await self._db.write_statements([Statement(_RECORD_BOOT, args), event_statement(booted)], fence=fence)

    async def touch_many(self, seen: dict[str, datetime]) -> None:
        """Unfenced on purpose: last_seen only moves forward, whoever writes it."""
        ids = sorted(seen)
        for at in range(0, len(ids), _TOUCH_CHUNK):
            chunk = ids[at : at + _TOUCH_CHUNK]
            await self._db.execute(_TOUCH_MANY, chunk, [seen[i] for i in chunk])

    async def connector_ids(self, station_id: str) -> list[int]:
        """1.6 connectors the station reported a status for (0, the station itself, included)."""
        rows = await self._db.fetch(
            "SELECT connector_id FROM connector_status WHERE station_id = $1 AND evse_id = 0 ORDER BY connector_id",
            station_id,
        )
        return [int(row["connector_id"]) for row in rows]

    async def evse_connectors(self, station_id: str) -> list[tuple[int, int]]:
        """2.0.1 (EVSE, connector) pairs the station reported a status for."""
        rows = await self._db.fetch(
            "SELECT evse_id, connector_id FROM connector_status WHERE station_id = $1 AND evse_id > 0"
            " ORDER BY evse_id, connector_id",
            station_id,
        )
        return [(row["evse_id"], row["connector_id"]) for row in rows]

    async def record_status(
        self,
        fence: Fence,
        *,
        connector_id: int,
        status: str,
        error_code: str,
        info: str | None,
        vendor_id: str | None,
        vendor_error_code: str | None,
        timestamp: datetime | None,
        received_at: datetime,
        evse_id: int = 0,
    ) -> None:
        """History always grows; the current state only moves forward in station time (late messages lose).
        ``evse_id`` 0: a 1.6 connector (numbered station-wide, no EVSE level)."""
        args = (
            fence.station_id,
            connector_id,
            status,
            error_code,
            info,
            vendor_id,
            vendor_error_code,
            timestamp,
            received_at,
            evse_id,
        )
        changed = Event(
            "connector.status_changed.v1",
            "connector",
            f"{fence.station_id}/{evse_id}/{connector_id}" if evse_id else f"{fence.station_id}/{connector_id}",
            fence.station_id,
            {
                "station_id": fence.station_id,
                "evse_id": evse_id or None,
                "connector_id": connector_id,
                "status": status,
                "error_code": error_code,
                "info": info,
                "station_timestamp": _iso(timestamp),
                "received_at": received_at.isoformat(),
            },
        )
        await self._db.write_statements(
            [Statement(_INSERT_STATUS_HISTORY, args), Statement(_UPSERT_STATUS, args), event_statement(changed)],
            fence=fence,
        )

    async def record_data_transfer(
        self,
        fence: Fence,
        *,
        vendor_id: str,
        message_id: str | None,
        data: str | None,
        answered: str,
        received_at: datetime,
    ) -> None:
        args = (fence.station_id, vendor_id, message_id, data, answered, received_at)
        await self._db.write_statements([Statement(_INSERT_DATA_TRANSFER, args)], fence=fence)

    async def record_event(
        self, fence: Fence, action: str, summary: str | None, payload: dict[str, Any], received_at: datetime
    ) -> None:
        """A station's report kept as sent (2.0.1 Notify*, security events, status notifications)."""
        await self._db.write_statements(event(fence.station_id, action, summary, payload, received_at), fence=fence)

    async def events(
        self, station_id: str, *, action: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Newest first; page with ``before_id`` (the last id of the previous page)."""
        rows = await self._db.fetch(
            "SELECT id, action, summary, payload, received_at FROM station_events WHERE station_id = $1"
            " AND ($2::text IS NULL OR action = $2) AND ($3::bigint IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
            station_id,
            action,
            before_id,
            limit,
        )
        return [{**dict(r), "received_at": _iso(r["received_at"])} for r in rows]

    async def notifications(self, station_id: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            "SELECT kind, status, received_at FROM station_notifications WHERE station_id = $1"
            " ORDER BY id DESC LIMIT $2",
            station_id,
            limit,
        )
        return [{**dict(r), "received_at": _iso(r["received_at"])} for r in rows]
