"""Exporter state in Postgres: one durable cursor per sink and the sinks' dead letters.

The cursor is advanced only after the sink acknowledged everything up to it, and never backwards (a deposed
exporter finishing a batch late cannot rewind its successor), so after a failover the new holder resumes at
or before the first unacknowledged event: at-least-once, nothing skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from csms.outbox.reading import Cursor
from csms.storage import Connection, Database, Row

_ADVANCE = """
INSERT INTO export_cursors (sink, txid, seq, exported, updated_at) VALUES ($1, $2::text::xid8, $3, $4, now())
ON CONFLICT (sink) DO UPDATE SET txid = EXCLUDED.txid, seq = EXCLUDED.seq,
    exported = export_cursors.exported + EXCLUDED.exported, updated_at = now()
WHERE (export_cursors.txid, export_cursors.seq) < (EXCLUDED.txid, EXCLUDED.seq)
"""


class ExportStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def cursor(self, sink: str) -> Cursor:
        row = await self._db.fetchrow("SELECT txid::text AS txid, seq FROM export_cursors WHERE sink = $1", sink)
        return Cursor(int(row["txid"]), row["seq"]) if row else Cursor(0, 0)

    async def advance(self, sink: str, cursor: Cursor, count: int) -> None:
        await self._db.execute(_ADVANCE, sink, str(cursor.txid), cursor.seq, count)

    async def sinks(self) -> list[dict[str, Any]]:
        """Every sink's cursor with its lag: events behind and the age of the oldest one not yet exported."""
        rows = await self._db.fetch(
            """
            SELECT c.sink, c.txid::text || '-' || c.seq AS cursor, c.exported, c.updated_at,
                (SELECT count(*) FROM outbox o WHERE (o.txid, o.seq) > (c.txid, c.seq)) AS lag_events,
                (SELECT extract(epoch FROM now() - min(o.occurred_at)) FROM outbox o
                  WHERE (o.txid, o.seq) > (c.txid, c.seq)) AS lag_seconds,
                (SELECT count(*) FROM export_dead_letters d WHERE d.sink = c.sink AND d.replayed_at IS NULL)
                  AS dead_letters
            FROM export_cursors c ORDER BY c.sink
            """
        )
        return [
            {**dict(r), "updated_at": r["updated_at"].isoformat(), "lag_seconds": float(r["lag_seconds"] or 0)}
            for r in rows
        ]

    # -- dead letters -----------------------------------------------------------------------------------------

    async def dead_letter(self, sink: str, events: list[dict[str, Any]], attempts: int, error: str) -> None:
        async def op(conn: Connection) -> None:
            await conn.executemany(
                "INSERT INTO export_dead_letters (sink, event_id, event, attempts, last_error)"
                " VALUES ($1, $2::uuid, $3::jsonb, $4, $5)"
                " ON CONFLICT (sink, event_id) DO UPDATE SET attempts = export_dead_letters.attempts"
                " + EXCLUDED.attempts, last_error = EXCLUDED.last_error, failed_at = now(), replayed_at = NULL,"
                " replay_requested = false",
                [(sink, e["id"], e, attempts, error[:1000]) for e in events],
            )

        await self._db.transaction(op)

    def dead_letter_for(self, sink: str) -> Callable[[list[dict[str, Any]], int, str], Awaitable[None]]:
        async def record(events: list[dict[str, Any]], attempts: int, error: str) -> None:
            await self.dead_letter(sink, events, attempts, error)

        return record

    async def dead_letters(self, sink: str, *, limit: int, after_id: int = 0) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            "SELECT id, event_id, event, attempts, last_error, failed_at, replayed_at, replay_requested"
            " FROM export_dead_letters WHERE sink = $1 AND id > $2 ORDER BY id LIMIT $3",
            sink,
            after_id,
            limit,
        )
        return [_letter(r) for r in rows]

    async def request_replay(self, sink: str, ids: list[int] | None) -> int:
        """Mark dead letters (these ids, or all of the sink's not yet replayed) for the active exporter to resend."""
        result = await self._db.execute(
            "UPDATE export_dead_letters SET replay_requested = true"
            " WHERE sink = $1 AND replayed_at IS NULL AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))",
            sink,
            ids,
        )
        return int(result.rsplit(" ", 1)[-1])

    async def replays(self, sink: str, limit: int) -> list[Row]:
        return await self._db.fetch(
            "SELECT id, event FROM export_dead_letters WHERE sink = $1 AND replay_requested AND replayed_at IS NULL"
            " ORDER BY id LIMIT $2",
            sink,
            limit,
        )

    async def replayed(self, ids: list[int]) -> None:
        await self._db.execute(
            "UPDATE export_dead_letters SET replayed_at = now(), replay_requested = false WHERE id = ANY($1::bigint[])",
            ids,
        )


def _letter(row: Row) -> dict[str, Any]:
    data = dict(row)
    data["event_id"] = str(data["event_id"])
    data["failed_at"] = data["failed_at"].isoformat()
    data["replayed_at"] = data["replayed_at"].isoformat() if data["replayed_at"] else None
    return data
