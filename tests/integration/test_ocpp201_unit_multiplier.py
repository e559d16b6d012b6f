"""A 2.0.1 reading's unit multiplier is any integer the schema allows: the reading is kept as bounded text
whatever it is (never an InternalError, never megabytes of zeros), and only plausible readings count as energy."""

from __future__ import annotations

import pytest

from devcluster import station201 as v201
from devcluster.station import SimulatedStation
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration

MULTIPLIERS = [2**31 - 1, -(2**31), 900_000, -900_000, 3]


async def test_any_unit_multiplier_is_kept_as_short_text(csms: Running) -> None:
    await csms.put_station("CP-MULT")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-MULT", subprotocols=v201.SUBPROTOCOL_201) as cp,
        csms.api() as api,
    ):
        await cp.call("BootNotification", v201.boot())
        started = v201.transaction_event("Started", "TX-M", 0, wh=1000, evse_id=1, connector_id=1)
        await cp.call("TransactionEvent", started)
        for seq_no, multiplier in enumerate(MULTIPLIERS, start=1):
            event = v201.transaction_event("Updated", "TX-M", seq_no, wh=1.5)
            event["meterValue"][0]["sampledValue"][0]["unitOfMeasure"] = {"unit": "Wh", "multiplier": multiplier}
            assert await cp.call("TransactionEvent", event) == {}  # answered: the value is the station's own
        (tx,) = (await api.get("/api/v1/transactions", params={"station_id": "CP-MULT"})).json()["items"]
        detail = (await api.get(f"/api/v1/transactions/{tx['id']}")).json()
    values = [m["value"] for m in detail["meter_values"]]
    assert len(values) == 1 + len(MULTIPLIERS)
    assert max(len(v) for v in values) < 40, [v[:50] for v in values]
    assert "1.5E+2147483647" in values and "1.5E-900000" in values and "1500" in values
    assert tx["energy_so_far_wh"] == 500  # 1.5 kWh-by-multiplier is plausible; the absurd ones are not energy
