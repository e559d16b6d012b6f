"""Leader job: partitions created ahead for the outbox (days) and meter values (months), and retention: outbox
days every sink has passed, meter-value months past their age (archived to Parquet first when configured)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from csms import outbox, transactions
from csms.observability import Metrics
from csms.storage import Database, archive_partition

log = logging.getLogger(__name__)

OUTBOX_DAYS_AHEAD = 3
METER_MONTHS_AHEAD = 2


@dataclass(frozen=True)
class RetentionSettings:
    outbox_hours: float
    meter_values_days: float  # 0: keep for ever
    archive_url: str  # "": drop without archive


async def maintain_partitions(
    db: Database, settings: RetentionSettings, metrics: Metrics, now: datetime | None = None
) -> None:
    now = now or datetime.now(UTC)
    for table, ahead in ((outbox.OUTBOX, OUTBOX_DAYS_AHEAD), (transactions.METER_VALUES, METER_MONTHS_AHEAD)):
        try:
            for name in await table.ensure(db, now.date(), ahead):
                metrics.partition_maintenance.labels(table.table, "created").inc()
                log.info("partition created", extra={"partition": name})
        except Exception:
            metrics.partition_maintenance.labels(table.table, "failed").inc()
            raise
    for partition in await outbox.expired_partitions(db, settings.outbox_hours, now):
        await outbox.OUTBOX.drop(db, partition)
        metrics.partition_maintenance.labels("outbox", "dropped").inc()
        log.info("outbox partition dropped", extra={"partition": partition.name})
    if settings.meter_values_days <= 0:
        return
    cutoff = now - timedelta(days=settings.meter_values_days)
    for partition in await transactions.METER_VALUES.existing(db):
        if partition.end > cutoff:
            continue
        if settings.archive_url:
            path, rows = await archive_partition(db, partition.name, "id", settings.archive_url)
            metrics.partition_maintenance.labels("meter_values", "archived").inc()
            log.info("partition archived", extra={"partition": partition.name, "path": path, "rows": rows})
        await transactions.METER_VALUES.drop(db, partition)
        metrics.partition_maintenance.labels("meter_values", "dropped").inc()
        log.info("meter values partition dropped", extra={"partition": partition.name})
