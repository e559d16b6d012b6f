"""Retries, replays and late messages: nothing acked is lost and nothing is counted twice."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import trio

from csms.storage import Database
from csms.transactions import TransactionLedger
from devcluster.station import SimulatedStation, now_iso
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration


async def _count(database_url: str, sql: str, *args: object) -> int:
    """Read straight from Postgres on a fresh connection: what is committed, not what a cache says."""

    async def query() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return int(await conn.fetchval(sql, *args))
        finally:
            await conn.close()

    return await trio.to_thread.run_sync(lambda: asyncio.run(query()))


async def test_retried_start_returns_the_same_transaction(csms: Running) -> None:
    await csms.put_station("CP-R")
    ts = now_iso()
    async with SimulatedStation.connect(csms.ocpp_url, "CP-R") as cp:
        first = await cp.start_transaction(1, "TAG", 500, timestamp=ts)
        # The station missed our answer and retries with a new message id, on a new connection.
    async with SimulatedStation.connect(csms.ocpp_url, "CP-R") as cp:
        again = await cp.start_transaction(1, "TAG", 500, timestamp=ts)
        other = await cp.start_transaction(2, "TAG", 500, timestamp=ts)
    assert again["transactionId"] == first["transactionId"]
    assert other["transactionId"] != first["transactionId"]
    assert await _count(csms.database_url, "SELECT count(*) FROM transactions WHERE station_id = 'CP-R'") == 2


async def test_acked_start_is_committed(csms: Running) -> None:
    await csms.put_station("CP-D")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-D") as cp:
        tx = (await cp.start_transaction(1, "TAG", 0))["transactionId"]
        # The CallResult is only sent after COMMIT: another connection sees the row right away.
        assert await _count(csms.database_url, "SELECT count(*) FROM transactions WHERE id = $1", tx) == 1


async def test_repeated_stop_and_late_meter_values_do_not_double_count(csms: Running) -> None:
    await csms.put_station("CP-S")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-S") as cp:
        tx = (await cp.start_transaction(1, "TAG", 100))["transactionId"]
        sample_ts = now_iso()
        await cp.meter_values(1, tx, 150, timestamp=sample_ts)
        stop_ts = now_iso()
        await cp.stop_transaction(tx, 400, timestamp=stop_ts)
        # Replays after a reconnect: the same stop (new message id) with a different meterStop, the same sample.
        assert await cp.stop_transaction(tx, 999, timestamp=now_iso()) == {}
        assert await cp.meter_values(1, tx, 150, timestamp=sample_ts) == {}
        # A genuinely late sample for the finished transaction is kept but changes no totals.
        assert await cp.meter_values(1, tx, 390, timestamp=now_iso()) == {}
    async with csms.api() as api:
        data = (await api.get(f"/api/v1/transactions/{tx}")).json()
    assert data["energy_wh"] == 300
    assert data["meter_stop"] == 400
    assert sorted(m["value"] for m in data["meter_values"]) == ["150", "390"]


async def test_meter_values_before_an_older_stop(csms: Running) -> None:
    """After a reconnect a station may deliver a live MeterValues before its queued StopTransaction."""
    await csms.put_station("CP-O")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-O") as cp:
        tx1 = (await cp.start_transaction(1, "TAG", 0, timestamp="2026-01-01T10:00:00Z"))["transactionId"]
        tx2 = (await cp.start_transaction(1, "TAG", 5000, timestamp="2026-01-01T11:00:00Z"))["transactionId"]
        await cp.meter_values(1, tx2, 5100, timestamp="2026-01-01T11:01:00Z")
        await cp.stop_transaction(tx1, 4000, timestamp="2026-01-01T10:59:00Z")
        await cp.stop_transaction(tx2, 5500, timestamp="2026-01-01T11:30:00Z")
    async with csms.api() as api:
        one = (await api.get(f"/api/v1/transactions/{tx1}")).json()
        two = (await api.get(f"/api/v1/transactions/{tx2}")).json()
    assert (one["energy_wh"], two["energy_wh"]) == (4000, 500)
    assert one["stop_timestamp"].startswith("2026-01-01T10:59")


async def test_stop_for_unknown_transaction_is_recorded(csms: Running) -> None:
    await csms.put_station("CP-U")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-U") as cp:
        assert await cp.stop_transaction(424242, 10, timestamp="2026-01-01T00:00:00Z") == {}
        assert await cp.stop_transaction(424242, 10, timestamp="2026-01-01T00:00:00Z") == {}
    assert await _count(csms.database_url, "SELECT count(*) FROM unknown_stops WHERE transaction_id = 424242") == 1


async def test_status_history_keeps_everything_current_state_moves_forward(csms: Running) -> None:
    await csms.put_station("CP-H")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-H") as cp:
        for status, ts in (("Charging", "2026-01-01T10:00:00Z"), ("Available", "2026-01-01T09:00:00Z")):
            await cp.call(
                "StatusNotification",
                {"connectorId": 1, "status": status, "errorCode": "NoError", "timestamp": ts},
            )
    async with csms.api() as api:
        station = (await api.get("/api/v1/stations/CP-H")).json()
    assert station["connectors"][0]["status"] == "Charging"  # the late, older message lost
    assert await _count(csms.database_url, "SELECT count(*) FROM connector_status_history") == 2


async def test_abandoned_transaction_is_closed_and_a_late_real_stop_still_wins(csms: Running, db: Database) -> None:
    await csms.put_station("CP-AB")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-AB") as cp:
        tx = (await cp.start_transaction(1, "TAG", 1000))["transactionId"]
        await cp.meter_values(1, tx, 1800)
        quiet = (await cp.start_transaction(2, "TAG", 0))["transactionId"]
        ledger = TransactionLedger(db)  # the leader job's call, on the replica's database
        # Nothing is older than an hour yet: the leader's sweep leaves both alone.
        assert await ledger.close_abandoned(3600) == 0
        assert await ledger.close_abandoned(0) == 2
        async with csms.api() as api:
            closed = (await api.get(f"/api/v1/transactions/{tx}")).json()
            assert (closed["stop_reason"], closed["meter_stop"], closed["energy_wh"]) == ("Abandoned", 1800, 800)
            assert (await api.get(f"/api/v1/transactions/{quiet}")).json()["energy_wh"] == 0
        # The station was only offline: its queued stop arrives and replaces the estimate.
        await cp.stop_transaction(tx, 2500)
        async with csms.api() as api:
            real = (await api.get(f"/api/v1/transactions/{tx}")).json()
        assert (real["stop_reason"], real["energy_wh"]) == ("Local", 1500)
