"""The audit trail: the only code that touches the `commands` table."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from csms.storage import Database

MIGRATIONS = Path(__file__).parent / "migrations"

_COLUMNS = """id, station_id, protocol, action, payload, status, result, error, requested_by, requested_at,
completed_at, latency_ms, executed_by, attempts, is_async"""


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value


def command_json(row: Any) -> dict[str, Any]:
    data = dict(row)
    for key in ("payload", "result", "error"):
        data[key] = _json(data[key])
    for key in ("requested_at", "completed_at"):
        if data[key] is not None:
            data[key] = data[key].isoformat()
    data["async"] = data.pop("is_async")
    return data


class CommandStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, station_id: str, protocol: str, action: str, payload: dict[str, Any], requested_by: str, is_async: bool
    ) -> int:
        value = await self._db.fetchval(
            "INSERT INTO commands (station_id, protocol, action, payload, status, requested_by, is_async)"
            " VALUES ($1, $2, $3, $4::jsonb, 'pending', $5, $6) RETURNING id",
            station_id,
            protocol,
            action,
            orjson.dumps(payload).decode(),
            requested_by,
            is_async,
        )
        return int(value)

    async def finish(
        self,
        command_id: int,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        latency_ms: float | None = None,
        executed_by: str | None = None,
        attempts: int = 1,
    ) -> dict[str, Any]:
        row = await self._db.fetchrow(
            f"""
            UPDATE commands SET status = $2, result = $3::jsonb, error = $4::jsonb, latency_ms = $5,
                executed_by = $6, attempts = $7, completed_at = now()
            WHERE id = $1 RETURNING {_COLUMNS}
            """,
            command_id,
            status,
            orjson.dumps(result).decode() if result is not None else None,
            orjson.dumps(error).decode() if error is not None else None,
            latency_ms,
            executed_by,
            attempts,
        )
        assert row is not None
        return command_json(row)

    async def get(self, command_id: int) -> dict[str, Any] | None:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM commands WHERE id = $1", command_id)
        return command_json(row) if row else None

    async def page(
        self,
        *,
        station_id: str | None = None,
        action: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            f"""
            SELECT {_COLUMNS} FROM commands
            WHERE ($1::text IS NULL OR station_id = $1) AND ($2::text IS NULL OR action = $2)
              AND ($3::text IS NULL OR status = $3) AND ($4::timestamptz IS NULL OR requested_at >= $4)
              AND ($5::bigint IS NULL OR id < $5)
            ORDER BY id DESC LIMIT $6
            """,
            station_id,
            action,
            status,
            since,
            before_id,
            limit,
        )
        return [command_json(row) for row in rows]

    async def expire_stale(self, older_than_seconds: float) -> int:
        """Leader job: a command still pending long after any call could have ended lost its executor."""
        result = await self._db.execute(
            "UPDATE commands SET status = 'unknown_outcome', completed_at = now(),"
            ' error = \'{"code": "ExecutorLost", "description": "the executing replica went away"}\'::jsonb'
            " WHERE status = 'pending' AND requested_at < now() - make_interval(secs => $1)",
            older_than_seconds,
        )
        return int(result.rsplit(" ", 1)[-1])
