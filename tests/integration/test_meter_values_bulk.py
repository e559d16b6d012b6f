"""MeterValues samples are inserted in bulk (one statement for every sample of a write batch): each is still
stored against its own station and transaction, at the instant the station meant, once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import trio

from csms.storage import Database
from devcluster.station import SimulatedStation
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration

STATIONS = [f"CP-B{i}" for i in range(12)]


async def test_samples_of_many_stations_in_one_batch_keep_their_station_time_and_are_stored_once(
    csms: Running, db: Database
) -> None:
    for station in STATIONS:
        await csms.put_station(station)
    at_offset = "2026-06-01T12:00:00.123456+05:30"  # the same instant as 06:30:00.123456Z
    sample = {"measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    power = {"measurand": "Power.Active.Import", "unit": "W", "value": "7000"}
    transactions: dict[str, int] = {}

    async def station(name: str, n: int) -> None:
        async with SimulatedStation.connect(csms.ocpp_url, name) as cp:
            tx = transactions[name] = (await cp.start_transaction(1, "TAG", 0))["transactionId"]
            values = [{**sample, "value": str(1000 + n)}, power, power]  # power twice: kept once
            payload = {
                "connectorId": 1,
                "transactionId": tx,
                "meterValue": [{"timestamp": at_offset, "sampledValue": values}],
            }
            for _ in range(2):  # the second time is the station's retry after a lost answer: nothing new
                assert await cp.call("MeterValues", payload) == {}

    async with trio.open_nursery() as nursery:  # at once, so their samples share write batches
        for n, name in enumerate(STATIONS):
            nursery.start_soon(station, name, n)

    rows = await db.fetch(
        "SELECT station_id, transaction_id, reported_transaction_id, station_timestamp, measurand, value"
        " FROM meter_values WHERE source = 'MeterValues' ORDER BY station_id, measurand"
    )
    instant = datetime(2026, 6, 1, 6, 30, 0, 123456, tzinfo=UTC)
    assert len(rows) == 2 * len(STATIONS)
    for n, name in enumerate(STATIONS):
        energy, power_row = [r for r in rows if r["station_id"] == name]
        assert (energy["measurand"], energy["value"]) == ("Energy.Active.Import.Register", str(1000 + n))
        assert (power_row["measurand"], power_row["value"]) == ("Power.Active.Import", "7000")
        for row in (energy, power_row):
            assert row["transaction_id"] == transactions[name] and row["reported_transaction_id"] is None
            assert row["station_timestamp"] == instant
