"""Implausible station values (issue 9 items 3 and 10): refuse what the spec forbids, flag the odd-but-possible.

Refused with PropertyConstraintViolation: StartTransaction on connector 0 or on a connector the station does not
have (as far as it told us), negative meterStart / meterStop. Kept, flagged in the API and left out of energy:
readings after the station's stop or above its meterStop, on another connector, far in the future; a meterStop
below meterStart. Also: energy so far for active transactions, the spec's default stop reason, last_seen_at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import trio

from devcluster.station import CallErrorReply, SimulatedStation, accept_everything
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration

TAG = "TAG-PLAUSIBLE"


def iso(offset_seconds: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_seconds)).isoformat()


async def refused(call: Any) -> str:
    with pytest.raises(CallErrorReply) as caught:
        await call
    assert caught.value.code == "PropertyConstraintViolation", caught.value
    return str(caught.value.description)


async def transaction(api: httpx.AsyncClient, tx: int) -> dict[str, Any]:
    response = await api.get(f"/api/v1/transactions/{tx}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_start_refused_on_connector_zero_and_on_connectors_the_station_does_not_have(csms: Running) -> None:
    await csms.put_station("CP-CONN")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-CONN") as cp:
        await cp.boot()
        # Nothing known yet: any connector > 0 goes (a station we do not know yet must not lose a charge).
        assert "transactionId" in await cp.start_transaction(7, TAG, meter_start=0)
        assert "0 is the station itself" in await refused(cp.start_transaction(0, TAG, meter_start=0))
        assert "must be > 0" in await refused(cp.start_transaction(-1, TAG, meter_start=0))

    await csms.put_station("CP-STATUS")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-STATUS") as cp:
        await cp.boot()
        for connector in (0, 1, 2):
            await cp.status(connector, "Available")
        assert "transactionId" in await cp.start_transaction(2, TAG, meter_start=0)
        assert "not a connector of this station" in await refused(cp.start_transaction(3, TAG, meter_start=0))

    async def four_connectors(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "GetConfiguration":
            return {"configurationKey": [{"key": "NumberOfConnectors", "readonly": True, "value": "4"}]}
        return await accept_everything(action, payload)

    await csms.put_station("CP-CONFIG")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-CONFIG", answer=four_connectors) as cp, csms.api() as api:
        await cp.boot()
        await cp.status(1, "Available")
        response = await api.post("/api/v1/stations/CP-CONFIG/commands/GetConfiguration", json={})
        assert response.status_code == 200, response.text
        assert "transactionId" in await cp.start_transaction(4, TAG, meter_start=0)
        assert "NumberOfConnectors=4" in await refused(cp.start_transaction(5, TAG, meter_start=0))
        listed = (await api.get("/api/v1/transactions", params={"station_id": "CP-CONFIG"})).json()["items"]
        assert [t["connector_id"] for t in listed] == [4]


async def test_negative_meter_readings_are_refused(csms: Running) -> None:
    await csms.put_station("CP-NEG")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-NEG") as cp:
        assert "meterStart must not be negative" in await refused(cp.start_transaction(1, TAG, meter_start=-1))
        tx = (await cp.start_transaction(1, TAG, meter_start=10))["transactionId"]
        assert "meterStop must not be negative" in await refused(cp.stop_transaction(tx, -5))
        assert (await cp.stop_transaction(tx, 20)) == {}


async def test_readings_after_the_stop_are_kept_flagged_and_left_out_of_energy(csms: Running) -> None:
    await csms.put_station("CP-LATE")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-LATE") as cp, csms.api() as api:
        tx = (await cp.start_transaction(1, TAG, meter_start=1000, timestamp=iso(-600)))["transactionId"]
        await cp.meter_values(1, tx, 1500, timestamp=iso(-300))
        # Seen in practice: a queued reading timestamped after the stop, above meterStop, delivered first.
        await cp.meter_values(1, tx, 2100, timestamp=iso(120))
        await cp.stop_transaction(tx, 2000, timestamp=iso(0))
        # And one arriving after the stop.
        await cp.meter_values(1, tx, 2200, timestamp=iso(240))
        # On another connector, and far in the future: odd, kept, flagged.
        await cp.meter_values(2, tx, 1600, timestamp=iso(-200))

        data = await transaction(api, tx)
        assert data["energy_wh"] == 1000 and data["energy_so_far_wh"] == 1000 and data["flags"] == []
        assert [(m["value"], m["flag"]) for m in data["meter_values"]] == [
            ("1500", None),
            ("1600", "connector_mismatch"),
            ("2100", "after_stop"),
            ("2200", "after_stop"),
        ]


async def test_active_transactions_show_energy_so_far_from_plausible_readings(csms: Running) -> None:
    await csms.put_station("CP-LIVE")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-LIVE") as cp, csms.api() as api:
        tx = (await cp.start_transaction(1, TAG, meter_start=1000))["transactionId"]
        assert (await transaction(api, tx))["energy_so_far_wh"] is None
        await cp.meter_values(1, tx, 1500, timestamp=iso(-60))
        await cp.call(  # kWh, the unit stations use as often as Wh
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx,
                "meterValue": [{"timestamp": iso(-30), "sampledValue": [{"value": "1.8", "unit": "kWh"}]}],
            },
        )
        await cp.meter_values(1, tx, 900_000, timestamp=iso(3 * 86400))  # a clock gone wrong
        await cp.meter_values(1, tx, 500, timestamp=iso(-10))  # below meterStart: not this session's register
        data = await transaction(api, tx)
        assert data["active"] is True and data["energy_wh"] is None
        assert data["energy_so_far_wh"] == 800
        flags = {m["value"]: m["flag"] for m in data["meter_values"]}
        assert flags == {"1500": None, "1.8": None, "900000": "future_timestamp", "500": "below_meter_start"}
        station = (await api.get("/api/v1/stations/CP-LIVE")).json()
        assert [t["energy_so_far_wh"] for t in station["open_transactions"]] == [800]


async def test_odd_transactions_are_stored_with_flags(csms: Running) -> None:
    await csms.put_station("CP-ODD")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-ODD") as cp, csms.api() as api:
        tx = (await cp.start_transaction(1, TAG, meter_start=5000, timestamp=iso(2 * 86400)))["transactionId"]
        await cp.call("StopTransaction", {"transactionId": tx, "meterStop": 4000, "timestamp": iso(-60)})
        data = await transaction(api, tx)
        assert data["flags"] == ["start_in_future", "stop_before_start", "meter_stop_below_start"]
        assert (data["meter_stop"], data["energy_wh"], data["energy_so_far_wh"]) == (4000, None, None)
        assert data["stop_reason"] == "Local"  # absent reason: the spec's default


async def test_last_seen_moves_on_every_message(csms: Running) -> None:
    await csms.put_station("CP-SEEN")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-SEEN") as cp, csms.api() as api:
        await cp.boot()
        booted = (await api.get("/api/v1/stations/CP-SEEN")).json()["last_seen_at"]
        await cp.status(1, "Available")
        with trio.fail_after(15):  # flushed within an interval (5 s), not written per message
            while (await api.get("/api/v1/stations/CP-SEEN")).json()["last_seen_at"] == booted:
                await trio.sleep(0.2)
        seen = datetime.fromisoformat((await api.get("/api/v1/stations/CP-SEEN")).json()["last_seen_at"])
        assert seen > datetime.fromisoformat(booted)
