"""The console's "charging" is the same for both versions: 1.6 says Charging in its connector status, 2.0.1 says
Occupied there and Charging in its transaction's chargingState (which may arrive late and out of order)."""

from __future__ import annotations

import re

import pytest

from devcluster import station201 as v201
from devcluster.station import SimulatedStation
from tests.integration.conftest import READ_TOKEN, Running
from tests.integration.test_console import client, sign_in

pytestmark = pytest.mark.integration


async def test_charging_state_is_the_same_for_16_and_201_stations(csms: Running) -> None:
    for station in ("CHG-16", "CHG-201"):
        await csms.put_station(station)
    await csms.put_id_tag("TAG-CHG")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CHG-16", subprotocols=["ocpp1.6"]) as cp16,
        SimulatedStation.connect(csms.ocpp_url, "CHG-201", subprotocols=v201.SUBPROTOCOL_201) as cp,
        client(csms) as http,
        csms.api() as api,
    ):
        await sign_in(http, READ_TOKEN)

        async def charging() -> list[str]:
            page = await http.get("/ui/stations", params={"q": "CHG-", "state": "charging"})
            return re.findall(r'href="/ui/stations/(CHG-\d+)"', page.text)

        async def connector_charging() -> bool:
            (connector,) = (await api.get("/api/v1/stations/CHG-201")).json()["connectors"]
            return bool(connector["charging"])

        await cp16.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        await cp16.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"})
        await cp.call("BootNotification", v201.boot())
        await cp.call("StatusNotification", v201.status(1, 1, "Occupied"))
        tx = v201.transaction_event
        await cp.call("TransactionEvent", tx("Started", "T1", 0, id_token="TAG-CHG", evse_id=1, connector_id=1))
        assert await charging() == ["CHG-16"] and not await connector_charging()  # plugged in, not charging yet

        await cp.call("TransactionEvent", tx("Updated", "T1", 1, charging_state="Charging"))
        assert await charging() == ["CHG-16", "CHG-201"] and await connector_charging()
        overview = await http.get("/ui/")
        assert re.search(r'data-count="charging">\s*(\d+)', overview.text)

        await cp.call("TransactionEvent", tx("Ended", "T1", 3, charging_state="EVConnected"))
        assert await charging() == ["CHG-16"] and not await connector_charging()
        # A late event of the ended transaction (queued offline) does not make the EVSE charge again.
        await cp.call("TransactionEvent", tx("Updated", "T1", 2, charging_state="Charging", offline=True))
        assert await charging() == ["CHG-16"] and not await connector_charging()
