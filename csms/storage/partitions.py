"""Time-range partitions (native Postgres partitioning) for the modules' large tables.

A table partitioned by range on a timestamptz column gets one partition per day or month, named
``<table>_pYYYYMMDD`` / ``<table>_pYYYYMM``, plus a DEFAULT partition that keeps rows nobody made a partition
for (a station clock years off, a leader away for days): nothing is ever refused. The leader creates partitions
ahead of time and drops old ones (after an optional archive); modules say which tables and when.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from csms.storage.database import Database

Period = Literal["day", "month"]
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    start: datetime  # inclusive
    end: datetime  # exclusive


def _start_of(period: Period, day: date) -> date:
    return day if period == "day" else day.replace(day=1)


def _next(period: Period, start: date) -> date:
    if period == "day":
        return start + timedelta(days=1)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def _as_time(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def partition_for(table: str, period: Period, day: date) -> Partition:
    start = _start_of(period, day)
    suffix = start.strftime("%Y%m%d" if period == "day" else "%Y%m")
    return Partition(f"{table}_p{suffix}", _as_time(start), _as_time(_next(period, start)))


@dataclass(frozen=True, slots=True)
class PartitionedTable:
    """A range-partitioned table: ``period`` per partition."""

    table: str
    period: Period

    def __post_init__(self) -> None:
        if not _NAME.match(self.table):
            raise ValueError(f"not a plain table name: {self.table!r}")

    def wanted(self, today: date, ahead: int) -> list[Partition]:
        """The current partition and ``ahead`` more."""
        out, start = [], _start_of(self.period, today)
        for _ in range(ahead + 1):
            out.append(partition_for(self.table, self.period, start))
            start = _next(self.period, start)
        return out

    async def existing(self, db: Database) -> list[Partition]:
        """The dated partitions, oldest first (the DEFAULT one is not listed)."""
        rows = await db.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = $1::regclass ORDER BY c.relname",
            self.table,
        )
        found = []
        digits = 8 if self.period == "day" else 6
        pattern = re.compile(rf"^{re.escape(self.table)}_p(\d{{{digits}}})$")
        for row in rows:
            match = pattern.match(row["relname"])
            if match:
                raw = match[1] + ("" if self.period == "day" else "01")
                day = date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
                found.append(partition_for(self.table, self.period, day))
        return found

    async def ensure(self, db: Database, today: date, ahead: int) -> list[str]:
        """Create missing partitions from today's to ``ahead`` periods later; returns the names created.
        A period whose rows already landed in the DEFAULT partition is moved out of it in the same transaction."""
        have = {p.name for p in await self.existing(db)}
        created = []
        for p in self.wanted(today, ahead):
            if p.name in have:
                continue
            await db.execute(self._create_sql(p))
            created.append(p.name)
        return created

    def _create_sql(self, p: Partition) -> str:
        # Rows of this range in the DEFAULT partition would make a plain CREATE ... PARTITION OF fail: move them.
        t, d = self.table, f"{self.table}_default"
        lo, hi = p.start.isoformat(), p.end.isoformat()
        return f"""
        DO $$
        DECLARE col text;
        BEGIN
            SELECT a.attname INTO col FROM pg_partitioned_table pt
              JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
             WHERE pt.partrelid = '{t}'::regclass;
            CREATE TEMP TABLE IF NOT EXISTS partition_move (LIKE {t}) ON COMMIT DROP;
            EXECUTE format('WITH moved AS (DELETE FROM {d} WHERE %I >= %L AND %I < %L RETURNING *)'
                           ' INSERT INTO partition_move SELECT * FROM moved', col, '{lo}', col, '{hi}');
            CREATE TABLE IF NOT EXISTS {p.name} PARTITION OF {t} FOR VALUES FROM ('{lo}') TO ('{hi}');
            INSERT INTO {t} SELECT * FROM partition_move;
            DROP TABLE partition_move;
        END $$;
        """

    async def drop(self, db: Database, partition: Partition) -> None:
        await db.execute(f"DROP TABLE IF EXISTS {partition.name}")
