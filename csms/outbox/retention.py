"""Outbox partitions: one per day; a day is dropped once it is older than the retention and every exporter's
durable cursor has passed all of its events (a sink that is down keeps its events until it has them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from csms.storage import Database, Partition, PartitionedTable

OUTBOX = PartitionedTable("outbox", "day")


async def passed_by_every_sink(db: Database, partition: Partition) -> bool:
    """True if no sink's cursor is before any event of ``partition`` (no sinks: nobody waits for it)."""
    return bool(
        await db.fetchval(
            f"""
            SELECT NOT EXISTS (
                SELECT 1 FROM {partition.name} o, export_cursors c WHERE (o.txid, o.seq) > (c.txid, c.seq)
            )
            """
        )
    )


async def expired_partitions(db: Database, retention_hours: float, now: datetime | None = None) -> list[Partition]:
    """Partitions past the retention that every sink has passed, oldest first."""
    cutoff = (now or datetime.now(UTC)) - timedelta(hours=retention_hours)
    return [p for p in await OUTBOX.existing(db) if p.end <= cutoff and await passed_by_every_sink(db, p)]
