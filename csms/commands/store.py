"""The audit trail: the only code that touches the `commands` table."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from csms.outbox import Event, emit
from csms.storage import Connection, Database, given

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


def _completed(command: dict[str, Any]) -> Event:
    return Event(
        "command.completed.v1",
        "command",
        str(command["id"]),
        command["station_id"],
        {
            "command_id": command["id"],
            "station_id": command["station_id"],
            "action": command["action"],
            "status": command["status"],
            "result": command["result"],
            "error": command["error"],
        },
    )


class CommandStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, station_id: str, protocol: str, action: str, payload: dict[str, Any], requested_by: str, is_async: bool
    ) -> int:
        async def op(conn: Connection) -> int:
            command_id = int(
                await conn.fetchval(
                    "INSERT INTO commands (station_id, protocol, action, payload, status, requested_by, is_async)"
                    " VALUES ($1, $2, $3, $4::jsonb, 'pending', $5, $6) RETURNING id",
                    station_id,
                    protocol,
                    action,
                    orjson.dumps(payload).decode(),
                    requested_by,
                    is_async,
                )
            )
            data = {"command_id": command_id, "station_id": station_id, "action": action}
            await emit(
                conn,
                Event(
                    "command.requested.v1",
                    "command",
                    str(command_id),
                    station_id,
                    {**data, "requested_by": requested_by, "payload": payload, "protocol": protocol},
                ),
            )
            return command_id

        return await self._db.transaction(op)

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

        async def op(conn: Connection) -> Any:
            row = await conn.fetchrow(
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
            await emit(conn, _completed(command_json(row)))
            return row

        return command_json(await self._db.transaction(op))

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
        args: list[Any] = []
        where = given(
            (
                (station_id, "station_id = ${}"),
                (action, "action = ${}"),
                (status, "status = ${}"),
                (since, "requested_at >= ${}"),
                (before_id, "id < ${}"),
            ),
            args,
        )
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM commands WHERE {where} ORDER BY id DESC LIMIT ${len(args) + 1}",
            *args,
            limit,
        )
        return [command_json(row) for row in rows]

    async def expire_stale(self, older_than_seconds: float) -> int:
        """Leader job: a command still pending long after any call could have ended lost its executor."""

        async def op(conn: Connection) -> int:
            rows = await conn.fetch(
                "UPDATE commands SET status = 'unknown_outcome', completed_at = now(),"
                ' error = \'{"code": "ExecutorLost", "description": "the executing replica went away"}\'::jsonb'
                f" WHERE status = 'pending' AND requested_at < now() - make_interval(secs => $1) RETURNING {_COLUMNS}",
                older_than_seconds,
            )
            await emit(conn, *(_completed(command_json(row)) for row in rows))
            return len(rows)

        return await self._db.transaction(op)
