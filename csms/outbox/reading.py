"""Reading the outbox in commit-safe order, as CloudEvents 1.0.

A cursor is ``"<txid>-<seq>"`` (``"0-0"``: the beginning). Rows are read in (txid, seq) order and only once
every transaction that could still add a row before them has finished (txid below the snapshot's xmin), so
the stream behind a cursor never changes: a consumer that resumes from its cursor skips nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from csms.outbox.catalogue import PREFIX, TYPES
from csms.storage import Database, Row

START = "0-0"
_CURSOR = re.compile(r"^(\d{1,20})-(\d{1,19})$")

_READ = """
SELECT seq, txid::text AS txid, id, type, station_id, occurred_at, payload FROM outbox
WHERE (txid, seq) > ($1::text::xid8, $2::bigint)
  AND txid < pg_snapshot_xmin(pg_current_snapshot())
  AND ($3::text[] IS NULL OR type = ANY($3::text[]))
  AND ($4::text IS NULL OR station_id = $4)
ORDER BY outbox.txid, outbox.seq
LIMIT $5
"""
# ORDER BY names the table's columns: a bare ``txid`` would be the text output column, which sorts '1000' before
# '999' (a page out of order, and the next page, from the cursor of its last row, repeats events).


class BadCursor(ValueError):
    """A cursor or filter that is not ours (answered 400)."""


@dataclass(frozen=True, slots=True)
class Cursor:
    txid: int
    seq: int

    def __str__(self) -> str:
        return f"{self.txid}-{self.seq}"

    @classmethod
    def parse(cls, raw: str | None) -> Cursor:
        match = _CURSOR.match(raw or START)
        if match is None or int(match[1]) >= 2**64 or int(match[2]) >= 2**63:
            raise BadCursor("a cursor is '<txid>-<seq>' as returned in 'next' (or '0-0' for the beginning)")
        return cls(int(match[1]), int(match[2]))


def event_types(raw: str | None) -> list[str] | None:
    """``type=`` filter: comma-separated, with or without the ``csms.`` prefix."""
    if not raw:
        return None
    names = [name if name.startswith(PREFIX) else PREFIX + name for name in raw.split(",") if name]
    unknown = [name for name in names if name not in TYPES]
    if unknown:
        raise BadCursor(f"unknown event type(s): {', '.join(unknown)}; see /api/v1/events/schemas")
    return names


def cloud_event(row: Row, source: str) -> dict[str, Any]:
    """The CloudEvents 1.0 JSON form of an outbox row; ``sequence`` is the row's cursor."""
    return {
        "specversion": "1.0",
        "id": str(row["id"]),
        "source": source,
        "type": row["type"],
        "subject": row["station_id"],
        "time": row["occurred_at"].isoformat(),
        "datacontenttype": "application/json",
        "sequence": f"{row['txid']}-{row['seq']}",
        "data": row["payload"],
    }


class OutboxReader:
    def __init__(self, db: Database, source: str) -> None:
        self._db = db
        self.source = source

    async def rows(
        self, after: Cursor, *, limit: int, types: list[str] | None = None, station_id: str | None = None
    ) -> list[Row]:
        return await self._db.fetch(_READ, str(after.txid), after.seq, types, station_id, limit)

    async def page(
        self, after: Cursor, *, limit: int, types: list[str] | None = None, station_id: str | None = None
    ) -> tuple[list[dict[str, Any]], Cursor]:
        """Events after ``after`` and the cursor to continue from (``after`` itself when none are ready)."""
        rows = await self.rows(after, limit=limit, types=types, station_id=station_id)
        events = [cloud_event(row, self.source) for row in rows]
        return events, (Cursor(int(rows[-1]["txid"]), rows[-1]["seq"]) if rows else after)

    async def last_sequence(self) -> int:
        return int(await self._db.fetchval("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM outbox_seq"))

    async def head(self) -> Cursor:
        """The newest readable position (consumers that want only what comes next start here)."""
        row = await self._db.fetchrow(
            "SELECT txid::text AS txid, seq FROM outbox WHERE txid < pg_snapshot_xmin(pg_current_snapshot())"
            " ORDER BY outbox.txid DESC, outbox.seq DESC LIMIT 1"
        )
        return Cursor(int(row["txid"]), row["seq"]) if row else Cursor(0, 0)
