"""The 2.0.1 migrations keep every 1.6 row and its meaning (issue 10 item 0)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from csms import authorization, outbox, stations, transactions
from csms.storage import Database, Fence

pytestmark = pytest.mark.integration


def first(tmp_path: Path, module: str, source: Path, names: list[str]) -> Path:
    directory = tmp_path / module
    directory.mkdir()
    for name in names:
        shutil.copy(source / name, directory)
    return directory


async def test_16_rows_survive_and_keep_their_meaning(db: Database, tmp_path: Path) -> None:
    before = [
        ("stations", first(tmp_path, "stations", stations.MIGRATIONS, ["0001_stations.sql"])),
        ("transactions", first(tmp_path, "transactions", transactions.MIGRATIONS, ["0001_transactions.sql",
                                                                                    "0002_integrity.sql"])),
        ("authorization", first(tmp_path, "authorization", authorization.MIGRATIONS, ["0001_id_tags.sql"])),
    ]  # fmt: skip
    await db.migrate(before)
    await db.execute("INSERT INTO stations (id) VALUES ('OLD')")
    await db.execute(
        "INSERT INTO connector_status (station_id, connector_id, status, error_code, received_at)"
        " VALUES ('OLD', 1, 'Charging', 'NoError', now())"
    )
    await db.execute("INSERT INTO id_tags (id_tag, status) VALUES ('OLD-TAG', 'Accepted')")
    tx = await db.fetchval(
        "INSERT INTO transactions (station_id, connector_id, id_tag, id_tag_status, meter_start, start_timestamp,"
        " start_received_at) VALUES ('OLD', 1, 'OLD-TAG', 'Accepted', 100, '2020-01-01Z', now()) RETURNING id"
    )
    await db.execute(
        "INSERT INTO meter_values (station_id, connector_id, transaction_id, station_timestamp, received_at, source,"
        " measurand, phase, unit, context, location, format, value) VALUES ('OLD', 1, $1, now(), now(),"
        " 'MeterValues', 'Energy.Active.Import.Register', '', 'Wh', 'Sample.Periodic', 'Outlet', 'Raw', '150')",
        tx,
    )

    await db.migrate(
        [("stations", stations.MIGRATIONS), ("transactions", transactions.MIGRATIONS),
         ("authorization", authorization.MIGRATIONS), ("outbox", outbox.MIGRATIONS)]
    )  # fmt: skip

    ledger = transactions.TransactionLedger(db)
    row = await ledger.get(tx)
    assert row is not None
    assert (row["protocol"], row["station_tx_id"], row["energy_so_far_wh"], row["flags"]) == ("ocpp1.6", None, 50, [])
    assert [m["value"] for m in row["meter_values"]] == ["150"]
    station = await stations.StationRegistry(db).get("OLD")
    assert station is not None and station["protocol"] is None
    assert [(c["evse_id"], c["connector_id"], c["status"]) for c in station["connectors"]] == [(None, 1, "Charging")]
    tag = await authorization.IdTagStore(db).get("OLD-TAG")
    assert tag is not None and tag.token_type is None

    # 1.6's retry rule still holds on the old row: the same start content is the same transaction.
    await db.execute("INSERT INTO station_fences (station_id, fence, node_id) VALUES ('OLD', 1, 'n')")
    start = transactions.start_statements(
        "OLD", connector_id=1, id_tag="OLD-TAG", id_tag_status="Accepted", meter_start=100,
        timestamp=datetime(2020, 1, 1, tzinfo=UTC), received_at=datetime.now(UTC),
    )  # fmt: skip
    again = await db.write_statements(start, fence=Fence("OLD", 1))
    assert transactions.started_id(again) == tx
