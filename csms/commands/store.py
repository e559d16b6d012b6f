"""The audit trail: the only code that touches the `commands` table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from csms.commands.actor import Actor
from csms.outbox import Event, emit
from csms.storage import Connection, Database, given

MIGRATIONS = Path(__file__).parent / "migrations"

_COLUMNS = """id, station_id, protocol, action, payload, status, result, error, requested_by, requested_role,
requested_at, completed_at, latency_ms, executed_by, attempts, is_async"""


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


@dataclass(frozen=True)
class NewCommand:
    station_id: str
    protocol: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Finished:
    command_id: int
    status: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    latency_ms: float | None = None
    executed_by: str | None = None
    attempts: int = 1


def _requested(command_id: int, c: NewCommand, requested_by: str) -> Event:
    data = {"command_id": command_id, "station_id": c.station_id, "action": c.action}
    payload = {**data, "requested_by": requested_by, "payload": c.payload, "protocol": c.protocol}
    return Event("command.requested.v1", "command", str(command_id), c.station_id, payload)


class CommandStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, station_id: str, protocol: str, action: str, payload: dict[str, Any], requested_by: Actor, is_async: bool
    ) -> int:
        return (await self.create_many([NewCommand(station_id, protocol, action, payload)], requested_by, is_async))[0]

    async def create_many(self, commands: list[NewCommand], requested_by: Actor, is_async: bool) -> list[int]:
        """Record commands in one transaction (a batch costs one commit, not one per command)."""

        async def op(conn: Connection) -> list[int]:
            # One statement for the lot; rows take their ids in input order, so the sorted ids match it.
            rows = await conn.fetch(
                "INSERT INTO commands (station_id, protocol, action, payload, status, requested_by, requested_role,"
                " is_async) SELECT s, p, a, pl::jsonb, 'pending', $5, $6, $7"
                " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(s, p, a, pl, n)"
                " ORDER BY n RETURNING id",
                [c.station_id for c in commands],
                [c.protocol for c in commands],
                [c.action for c in commands],
                [orjson.dumps(c.payload).decode() for c in commands],
                requested_by.name,
                requested_by.role,
                is_async,
            )
            ids = sorted(int(row["id"]) for row in rows)
            await emit(conn, *(_requested(i, c, requested_by.name) for i, c in zip(ids, commands, strict=True)))
            return ids

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
        outcome = Finished(command_id, status, result, error, latency_ms, executed_by, attempts)
        return (await self.finish_many([outcome]))[0]

    async def finish_many(self, outcomes: list[Finished]) -> list[dict[str, Any]]:
        """Record answers in one transaction; returns the records in order."""

        async def op(conn: Connection) -> list[dict[str, Any]]:
            rows = await conn.fetch(
                f"""
                UPDATE commands c SET status = u.status, result = u.result::jsonb, error = u.error::jsonb,
                    latency_ms = u.latency_ms, executed_by = u.executed_by, attempts = u.attempts, completed_at = now()
                FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::text[], $7::int[])
                    AS u(id, status, result, error, latency_ms, executed_by, attempts)
                WHERE c.id = u.id RETURNING {", ".join("c." + name.strip() for name in _COLUMNS.split(","))}
                """,
                [f.command_id for f in outcomes],
                [f.status for f in outcomes],
                [orjson.dumps(f.result).decode() if f.result is not None else None for f in outcomes],
                [orjson.dumps(f.error).decode() if f.error is not None else None for f in outcomes],
                [f.latency_ms for f in outcomes],
                [f.executed_by for f in outcomes],
                [f.attempts for f in outcomes],
            )
            by_id = {int(row["id"]): command_json(row) for row in rows}
            records = [by_id[f.command_id] for f in outcomes]
            await emit(conn, *(_completed(r) for r in records))
            return records

        return await self._db.transaction(op)

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
