"""Read side of charging sessions for operators: filtered pages, CSV export, energy today, meter-value series.

Every read is bounded (pages with an id cursor, LIMITed series), so it costs the same at any fleet size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from csms.storage import Database

_COLUMNS = """id, station_id, connector_id, id_tag, id_tag_status, reservation_id, remote_started, meter_start,
start_timestamp, start_received_at, meter_stop, stop_timestamp, stop_received_at, stop_reason, energy_wh"""
CSV_COLUMNS = (*tuple(c.strip() for c in _COLUMNS.replace("\n", " ").split(",")), "active")
MAX_POINTS = 2000


@dataclass(frozen=True)
class SessionFilter:
    station_id: str = ""
    id_tag: str = ""
    active: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


def _plain(row: Any) -> dict[str, Any]:
    data = {key: (value.isoformat() if isinstance(value, datetime) else value) for key, value in dict(row).items()}
    data["active"] = data["stop_received_at"] is None
    return data


class SessionViews:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(self, f: SessionFilter, *, limit: int, before_id: int | None = None) -> list[dict[str, Any]]:
        """Newest first; the next page is ``before_id`` = the last id of this one."""
        rows = await self._db.fetch(
            f"""
            SELECT {_COLUMNS} FROM transactions
            WHERE ($1::text = '' OR station_id = $1) AND ($2::text = '' OR id_tag = $2)
              AND ($3::boolean IS NULL OR (stop_received_at IS NULL) = $3)
              AND ($4::timestamptz IS NULL OR start_timestamp >= $4)
              AND ($5::timestamptz IS NULL OR start_timestamp < $5)
              AND ($6::integer IS NULL OR id < $6)
            ORDER BY id DESC LIMIT $7
            """,
            f.station_id,
            f.id_tag,
            f.active,
            f.since,
            f.until,
            before_id,
            limit,
        )
        return [_plain(r) for r in rows]

    async def export(self, f: SessionFilter, *, max_rows: int, page: int = 1000) -> AsyncIterator[dict[str, Any]]:
        """Every matching session (up to ``max_rows``), read a page at a time."""
        before: int | None = None
        sent = 0
        while sent < max_rows:
            rows = await self.page(f, limit=min(page, max_rows - sent), before_id=before)
            for row in rows:
                yield row
            sent += len(rows)
            if len(rows) < page:
                return
            before = rows[-1]["id"]

    async def today(self) -> dict[str, int]:
        """Sessions active now, and energy of sessions that ended since midnight UTC (Wh)."""
        row = await self._db.fetchrow(
            """
            SELECT (SELECT count(*) FROM transactions WHERE stop_received_at IS NULL) AS active,
                (SELECT coalesce(sum(energy_wh), 0) FROM transactions
                 WHERE stop_received_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                   AND energy_wh > 0) AS energy_wh
            """
        )
        assert row is not None
        return {"active": int(row["active"]), "energy_wh": int(row["energy_wh"])}

    async def get(self, transaction_id: int) -> dict[str, Any] | None:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM transactions WHERE id = $1", transaction_id)
        return _plain(row) if row else None

    async def active_on(self, station_id: str) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM transactions WHERE station_id = $1 AND stop_received_at IS NULL"
            " ORDER BY id DESC LIMIT 20",
            station_id,
        )
        return [_plain(r) for r in rows]

    async def series(self, transaction_id: int, station_id: str) -> list[dict[str, Any]]:
        """Energy register (Wh) and active power (W) readings of one session, oldest first (bounded)."""
        rows = await self._db.fetch(
            r"""
            SELECT station_timestamp AS at, measurand,
                CASE WHEN unit IN ('kWh', 'kW') THEN value::numeric * 1000 ELSE value::numeric END AS value
            FROM meter_values
            WHERE transaction_id = $1 AND station_id = $2 AND value ~ '^-?[0-9]+(\.[0-9]+)?$'
              AND measurand IN ('Energy.Active.Import.Register', 'Power.Active.Import')
              AND phase = '' AND unit IN ('Wh', 'kWh', 'W', 'kW')
            ORDER BY station_timestamp LIMIT $3
            """,
            transaction_id,
            station_id,
            MAX_POINTS,
        )
        return [{"at": r["at"], "measurand": r["measurand"], "value": float(r["value"])} for r in rows]
