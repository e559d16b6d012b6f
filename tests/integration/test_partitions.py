"""Partitions: the migration moves existing meter values into the partitioned table without loss; the leader's
job creates partitions ahead (moving rows that landed in the default one), archives old meter-value months to
Parquet and drops them, and drops outbox days only once every exporter's cursor has passed them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from csms.app import MIGRATIONS
from csms.observability import Metrics
from csms.outbox import OUTBOX, Event, event_statement
from csms.partition_jobs import RetentionSettings, maintain_partitions
from csms.storage import Database, MigrationDir
from csms.transactions import METER_VALUES

pytestmark = pytest.mark.integration

_INSERT = """
INSERT INTO meter_values (station_id, connector_id, transaction_id, station_timestamp, received_at, source,
                          measurand, phase, unit, context, location, format, value)
VALUES ($1, 1, 0, $2, now(), 'MeterValues', 'Energy.Active.Import.Register', '', 'Wh', 'Sample.Periodic',
        'Outlet', 'Raw', $3)
"""


def _before(version: int, scratch: Path) -> list[tuple[str, MigrationDir]]:
    """Every module's migrations, the transactions module's only up to ``version``."""
    out: list[tuple[str, MigrationDir]] = []
    for module, directory in MIGRATIONS:
        if module == "transactions":
            kept = scratch / "transactions-migrations"
            kept.mkdir()
            for sql in sorted(Path(str(directory)).glob("*.sql")):
                if int(sql.name[:4]) <= version:
                    (kept / sql.name).write_text(sql.read_text())
            out.append((module, kept))
        else:
            out.append((module, directory))
    return out


async def test_migration_moves_existing_meter_values_into_partitions(db: Database, tmp_path: Path) -> None:
    await db.migrate(_before(5, tmp_path))
    now = datetime.now(UTC)
    stamps = [now - timedelta(days=400), now - timedelta(days=40), now, now - timedelta(days=365 * 20)]
    for i, at in enumerate(stamps):
        await db.execute(_INSERT, "CP-OLD", at, str(i))
    before = await db.fetch("SELECT id, station_timestamp, value FROM meter_values ORDER BY id")
    await db.migrate(MIGRATIONS)
    after = await db.fetch("SELECT id, station_timestamp, value FROM meter_values ORDER BY id")
    assert [tuple(r) for r in after] == [tuple(r) for r in before]  # nothing lost, ids kept
    assert await db.fetchval("SELECT count(*) FROM meter_values_default") == 1  # the clock 20 years off
    names = {p.name for p in await METER_VALUES.existing(db)}
    assert f"meter_values_p{(now - timedelta(days=400)):%Y%m}" in names
    # The id sequence carries on and the dedup constraint still holds.
    await db.execute(_INSERT, "CP-OLD", now + timedelta(seconds=1), "new")
    assert await db.fetchval("SELECT max(id) FROM meter_values") == before[-1]["id"] + 1
    status = await db.execute(_INSERT + " ON CONFLICT ON CONSTRAINT meter_values_once DO NOTHING", "CP-OLD", now, "x")
    assert status == "INSERT 0 0"
    assert await db.fetchval("SELECT count(*) FROM meter_readings WHERE station_id = 'CP-OLD'") == 5


@pytest.mark.parametrize("as_url", [False, True], ids=["directory", "file-url"])
async def test_partitions_ahead_archive_and_retention_round_trip(db: Database, tmp_path: Path, as_url: bool) -> None:
    """The archive goes to a directory or to a URL opened by pyarrow's filesystem layer (file:// here: the same
    code path as s3:// or gs://, against a real filesystem)."""
    await db.migrate(MIGRATIONS)
    now = datetime.now(UTC)
    old = now - timedelta(days=70)
    # A month the migration made no partition for: its rows wait in the default partition.
    far = now + timedelta(days=150)
    await db.execute(_INSERT, "CP-P", old, "1")
    await db.execute(_INSERT, "CP-P", old + timedelta(minutes=1), "2")
    await db.execute(_INSERT, "CP-P", far, "3")
    await METER_VALUES.ensure(db, old.date(), 0)  # an old month exists (the migration made it or this does)
    metrics = Metrics()
    archive = tmp_path / "archive"
    url = archive.as_uri() if as_url else str(archive)
    settings = RetentionSettings(outbox_hours=24, meter_values_days=40, archive_url=url)
    await maintain_partitions(db, settings, metrics, now=now)
    names = {p.name for p in await METER_VALUES.existing(db)}
    assert f"meter_values_p{now:%Y%m}" in names and f"meter_values_p{old:%Y%m}" not in names
    assert {f"outbox_p{now + timedelta(days=d):%Y%m%d}" for d in range(4)} <= {
        p.name for p in await OUTBOX.existing(db)
    }
    archived = pq.read_table(archive / f"meter_values_p{old:%Y%m}.parquet").to_pylist()
    assert sorted(r["value"] for r in archived) == ["1", "2"] and archived[0]["station_id"] == "CP-P"
    assert await db.fetchval("SELECT count(*) FROM meter_values WHERE value IN ('1', '2')") == 0
    # Creating the far month's partition moves its row out of the default partition, keeping it.
    await maintain_partitions(db, settings, metrics, now=far)
    assert await db.fetchval(f"SELECT count(*) FROM meter_values_p{far:%Y%m}") == 1
    assert await db.fetchval("SELECT count(*) FROM meter_values_default") == 0


async def test_outbox_days_are_dropped_only_after_every_sink_passed_them(db: Database) -> None:
    await db.migrate(MIGRATIONS)
    now = datetime.now(UTC)
    registered = Event("station.registered.v1", "station", "CP-O", "CP-O", {"station_id": "CP-O"})
    await db.write_statements([event_statement(registered)])  # one event, today
    later = now + timedelta(days=2)
    settings = RetentionSettings(outbox_hours=1, meter_values_days=0, archive_url="")
    await db.execute("INSERT INTO export_cursors (sink) VALUES ('webhook')")  # a sink that has exported nothing
    await maintain_partitions(db, settings, Metrics(), now=later)
    today = f"outbox_p{now:%Y%m%d}"
    assert today in {p.name for p in await OUTBOX.existing(db)}, "dropped before the sink had its events"
    await db.execute(
        "UPDATE export_cursors SET (txid, seq) = (SELECT txid, seq FROM outbox ORDER BY txid DESC, seq DESC LIMIT 1)"
    )
    await maintain_partitions(db, settings, Metrics(), now=later)
    assert today not in {p.name for p in await OUTBOX.existing(db)}
