"""The sites module's tables: definitions, live overrides, allocations in force and each site's last round."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from csms.outbox import Event, emit
from csms.sites import events
from csms.sites.allocation import Held
from csms.sites.fences import lock_fence
from csms.sites.model import SiteSpec, StationSpec
from csms.storage import Connection, Database, Row

MIGRATIONS = Path(__file__).parent / "migrations"


class StationOnOtherSite(Exception):
    def __init__(self, station_id: str, site_id: str) -> None:
        super().__init__(f"station {station_id} already belongs to site {site_id}")
        self.station_id, self.site_id = station_id, site_id


@dataclass(frozen=True)
class Allocation:
    """One station's row: what it holds, on which connector, and its last measured draw (A)."""

    station_id: str
    held: Held
    connector_id: int | None = None
    measured: float | None = None


@dataclass(frozen=True)
class Round:
    computed_by: str
    computed_at: datetime
    limit_now: float
    allocated: float
    measured: float
    charging: int
    capped: int
    reallocated_at: datetime | None
    seconds: float = 0.0  # how long the round took (not stored)


def _spec(row: Row, stations: list[Row]) -> SiteSpec:
    schedule = orjson.loads(row["schedule"])
    return SiteSpec(
        row["id"],
        limit=row["limit_value"],
        unit=row["unit"],
        voltage=row["voltage"],
        failsafe=row["failsafe"],
        schedule=tuple((int(start), float(limit)) for start, limit in schedule),
        override_limit=row["override_limit"],
        override_until=row["override_until"],
        stations=tuple(
            StationSpec(s["station_id"], s["min_current"], s["max_current"], s["phases"], s["priority"])
            for s in stations
        ),
    )


def _allocation(row: Row) -> Allocation:
    held = Held(
        default_limit=row["default_limit"],
        default_pending=row["default_pending"],
        transaction_id=row["transaction_id"],
        tx_limit=row["tx_limit"],
        tx_pending=row["tx_pending"],
        stuck=row["stuck"],
    )
    return Allocation(row["station_id"], held, row["connector_id"], row["measured"])


class SiteStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, spec: SiteSpec) -> bool:
        """Create or replace a site's definition (a live override survives); True if it was created."""
        ids = [s.station_id for s in spec.stations]

        async def op(conn: Connection) -> bool:
            clash = await conn.fetchrow(
                "SELECT station_id, site_id FROM site_stations WHERE station_id = ANY($1::text[]) AND site_id <> $2"
                " LIMIT 1",
                ids,
                spec.site_id,
            )
            if clash is not None:
                raise StationOnOtherSite(clash["station_id"], clash["site_id"])
            created = await conn.fetchval(
                "INSERT INTO sites (id, limit_value, unit, voltage, failsafe, schedule) VALUES ($1, $2, $3, $4, $5,"
                " $6::jsonb) ON CONFLICT (id) DO UPDATE SET limit_value = $2, unit = $3, voltage = $4, failsafe = $5,"
                " schedule = $6::jsonb, updated_at = now() RETURNING xmax = 0",
                spec.site_id,
                spec.limit,
                spec.unit,
                spec.voltage,
                spec.failsafe,
                orjson.dumps([list(entry) for entry in spec.schedule]).decode(),
            )
            await conn.execute("DELETE FROM site_stations WHERE site_id = $1", spec.site_id)
            await conn.executemany(
                "INSERT INTO site_stations (station_id, site_id, min_current, max_current, phases, priority)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                [
                    (s.station_id, spec.site_id, s.min_current, s.max_current, s.phases, s.priority)
                    for s in spec.stations
                ],
            )
            await emit(conn, events.defined(spec, bool(created)))
            return bool(created)

        return await self._db.transaction(op)

    async def set_override(self, site_id: str, limit: float, until: datetime) -> bool:
        async def op(conn: Connection) -> bool:
            status = await conn.execute(
                "UPDATE sites SET override_limit = $2, override_until = $3, updated_at = now() WHERE id = $1",
                site_id,
                limit,
                until,
            )
            if not status.endswith(" 1"):
                return False
            await emit(conn, events.overridden(site_id, limit, until))
            return True

        return await self._db.transaction(op)

    async def get(self, site_id: str) -> SiteSpec | None:
        async def read(conn: Connection) -> tuple[Row | None, list[Row]]:
            row = await conn.fetchrow("SELECT * FROM sites WHERE id = $1", site_id)
            stations = await conn.fetch("SELECT * FROM site_stations WHERE site_id = $1 ORDER BY station_id", site_id)
            return row, stations

        row, stations = await self._db.transaction(read)
        return None if row is None else _spec(row, stations)

    async def site_ids(self) -> list[str]:
        return [row["id"] for row in await self._db.fetch("SELECT id FROM sites ORDER BY id")]

    async def allocations(self, site_id: str) -> dict[str, Allocation]:
        rows = await self._db.fetch("SELECT * FROM site_allocations WHERE site_id = $1", site_id)
        return {row["station_id"]: _allocation(row) for row in rows}

    async def save(self, site_id: str, fence: int, rows: Sequence[Allocation]) -> None:
        """Record what stations hold (before a send: pending; after the answers: in force), in one commit, only
        while ``fence`` is the site's token (else SiteFenceSuperseded)."""
        if rows:
            event = events.allocations_changed(site_id, fence, rows=rows)
            await self._fenced(site_id, fence, event, _SAVE, *_save_args(site_id, rows))

    async def forget(self, site_id: str, fence: int, station_ids: Sequence[str]) -> None:
        ids = list(station_ids)
        event = events.allocations_changed(site_id, fence, removed=ids)
        await self._fenced(
            site_id, fence, event, "DELETE FROM site_allocations WHERE station_id = ANY($1::text[])", ids
        )

    async def save_round(self, site_id: str, fence: int, r: Round) -> None:
        await self._fenced(
            site_id,
            fence,
            events.round_computed(site_id, fence, r),
            "INSERT INTO site_rounds (site_id, computed_by, computed_at, limit_now, allocated, measured, charging,"
            " capped, reallocated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (site_id) DO UPDATE"
            " SET computed_by = $2, computed_at = $3, limit_now = $4, allocated = $5, measured = $6, charging = $7,"
            " capped = $8, reallocated_at = COALESCE($9, site_rounds.reallocated_at)",
            site_id,
            r.computed_by,
            r.computed_at,
            r.limit_now,
            r.allocated,
            r.measured,
            r.charging,
            r.capped,
            r.reallocated_at,
        )

    async def _fenced(self, site_id: str, fence: int, event: Event, sql: str, *args: Any) -> None:
        """One write (and its event) committed only while ``fence`` is the site's token."""

        async def op(conn: Connection) -> None:
            await lock_fence(conn, site_id, fence)
            await conn.execute(sql, *args)
            await emit(conn, event)

        await self._db.transaction(op)

    async def view(self, site_id: str) -> dict[str, Any] | None:
        """GET /api/v1/sites/{id}: the definition, the last round and every station's allocation."""
        spec = await self.get(site_id)
        if spec is None:
            return None
        allocations = await self.allocations(site_id)
        round_row = await self._db.fetchrow("SELECT * FROM site_rounds WHERE site_id = $1", site_id)
        stations = []
        for s in spec.stations:
            a = allocations.get(s.station_id)
            h = a.held if a else Held()
            stations.append(
                {
                    **s.as_json(),
                    "failsafe": h.default_limit,
                    "allocation": h.tx_limit if h.transaction_id is not None else None,
                    "pending": h.tx_pending if h.tx_pending is not None else h.default_pending,
                    "transaction_id": h.transaction_id,
                    "stuck": h.stuck,
                    "measured": a.measured if a else None,
                }
            )
        return {
            "id": spec.site_id,
            "limit": spec.limit,
            "unit": spec.unit,
            "voltage": spec.voltage,
            "failsafe": spec.failsafe,
            "schedule": [{"from": f"{m // 60:02d}:{m % 60:02d}", "limit": v} for m, v in spec.schedule],
            "override": (
                {"limit": spec.override_limit, "expires_at": spec.override_until.isoformat()}
                if spec.override_until is not None
                else None
            ),
            "round": None if round_row is None else _round_json(round_row),
            "stations": stations,
        }


_SAVE = (
    "INSERT INTO site_allocations AS a (station_id, site_id, default_limit, default_pending, transaction_id,"
    " connector_id, tx_limit, tx_pending, stuck, measured)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::int[], $6::int[],"
    " $7::float8[], $8::float8[], $9::bool[], $10::float8[])"
    " ON CONFLICT (station_id) DO UPDATE SET site_id = EXCLUDED.site_id,"
    " default_limit = EXCLUDED.default_limit, default_pending = EXCLUDED.default_pending,"
    " transaction_id = EXCLUDED.transaction_id, connector_id = EXCLUDED.connector_id,"
    " tx_limit = EXCLUDED.tx_limit, tx_pending = EXCLUDED.tx_pending, stuck = EXCLUDED.stuck,"
    " measured = EXCLUDED.measured, updated_at = now()"
)


def _save_args(site_id: str, rows: Sequence[Allocation]) -> list[list[Any]]:
    return [
        [r.station_id for r in rows],
        [site_id] * len(rows),
        [r.held.default_limit for r in rows],
        [r.held.default_pending for r in rows],
        [r.held.transaction_id for r in rows],
        [r.connector_id for r in rows],
        [r.held.tx_limit for r in rows],
        [r.held.tx_pending for r in rows],
        [r.held.stuck for r in rows],
        [r.measured for r in rows],
    ]


def _round_json(row: Row) -> dict[str, Any]:
    return {
        "computed_by": row["computed_by"],
        "computed_at": row["computed_at"].isoformat(),
        "limit_now": row["limit_now"],
        "allocated": row["allocated"],
        "measured": row["measured"],
        "charging": row["charging"],
        "capped": row["capped"],
        "reallocated_at": row["reallocated_at"].isoformat() if row["reallocated_at"] else None,
    }
