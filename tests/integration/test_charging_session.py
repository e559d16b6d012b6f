"""A whole charging session from a real WebSocket client, checked through the REST API."""

from __future__ import annotations

import pytest

from devcluster.station import SimulatedStation, now_iso
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration


async def test_full_session_is_durable_and_readable(csms: Running) -> None:
    await csms.put_station("CP-1", password="s3cret-password")
    await csms.put_id_tag("TAG-OK", parent_id_tag="FLEET-1")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-1", password="s3cret-password") as cp:
        boot = await cp.boot(firmwareVersion="1.2.3", chargePointSerialNumber="SN-9")
        assert boot["status"] == "Accepted"
        assert boot["interval"] == 300
        assert boot["currentTime"].endswith("Z")
        assert "currentTime" in await cp.call("Heartbeat", {})
        for connector in (0, 1, 2):
            assert await cp.status(connector, "Available") == {}
        auth = await cp.call("Authorize", {"idTag": "TAG-OK"})
        assert auth["idTagInfo"] == {"status": "Accepted", "parentIdTag": "FLEET-1"}
        assert (await cp.call("Authorize", {"idTag": "NOBODY"}))["idTagInfo"]["status"] == "Invalid"

        await cp.status(1, "Preparing")
        started = await cp.start_transaction(1, "TAG-OK", meter_start=1000)
        tx_id = started["transactionId"]
        assert started["idTagInfo"]["status"] == "Accepted"
        await cp.status(1, "Charging")
        await cp.meter_values(1, tx_id, 1500)
        await cp.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx_id,
                "meterValue": [
                    {
                        "timestamp": now_iso(),
                        "sampledValue": [
                            {
                                "value": "2000",
                                "measurand": "Energy.Active.Import.Register",
                                "unit": "Wh",
                                "context": "Sample.Periodic",
                                "location": "Outlet",
                            },
                            {"value": "230.1", "measurand": "Voltage", "phase": "L1", "unit": "V"},
                            {"value": "16.0", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                        ],
                    }
                ],
            },
        )
        stopped = await cp.call(
            "StopTransaction",
            {
                "transactionId": tx_id,
                "meterStop": 3500,
                "timestamp": now_iso(),
                "idTag": "TAG-OK",
                "reason": "EVDisconnected",
                "transactionData": [
                    {
                        "timestamp": now_iso(),
                        "sampledValue": [{"value": "3500", "context": "Transaction.End"}],
                    }
                ],
            },
        )
        assert stopped["idTagInfo"]["status"] == "Accepted"
        await cp.status(1, "Available")
        assert await cp.call("DataTransfer", {"vendorId": "com.example", "messageId": "x", "data": "y"}) == {
            "status": "UnknownVendorId"
        }
        assert await cp.call("DiagnosticsStatusNotification", {"status": "Uploaded"}) == {}
        assert await cp.call("FirmwareStatusNotification", {"status": "Installed"}) == {}

        async with csms.api() as api:
            station = (await api.get("/api/v1/stations/CP-1")).json()
            assert station["connected"] is True
            assert station["firmware_version"] == "1.2.3"
            assert station["serial_number"] == "SN-9"
            assert station["last_boot_status"] == "Accepted"
            assert {c["connector_id"]: c["status"] for c in station["connectors"]} == {
                0: "Available",
                1: "Available",
                2: "Available",
            }
            assert {n["kind"] for n in station["notifications"]} == {"diagnostics", "firmware"}

            tx = (await api.get(f"/api/v1/transactions/{tx_id}")).json()
            assert tx["energy_wh"] == 2500
            assert tx["meter_start"] == 1000 and tx["meter_stop"] == 3500
            assert tx["stop_reason"] == "EVDisconnected"
            assert tx["active"] is False
            measurands = sorted((m["measurand"], m["phase"], m["value"]) for m in tx["meter_values"])
            assert measurands == [
                ("Current.Import", "L1", "16.0"),
                ("Energy.Active.Import.Register", "", "1500"),
                ("Energy.Active.Import.Register", "", "2000"),
                ("Energy.Active.Import.Register", "", "3500"),
                ("Voltage", "L1", "230.1"),
            ]
            listed = (await api.get("/api/v1/transactions", params={"station_id": "CP-1"})).json()
            assert [t["id"] for t in listed["items"]] == [tx_id]
            active = (await api.get("/api/v1/transactions", params={"active": "true"})).json()
            assert active["items"] == []

    async with csms.api() as api:
        station = (await api.get("/api/v1/stations/CP-1")).json()
        assert station["connected"] is False


async def test_boot_policy_per_station(csms: Running) -> None:
    await csms.put_station("CP-PENDING", boot_status="Pending")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-PENDING") as cp:
        assert (await cp.boot())["status"] == "Pending"
    await csms.put_station("CP-PENDING", boot_status=None)
    async with SimulatedStation.connect(csms.ocpp_url, "CP-PENDING") as cp:
        assert (await cp.boot())["status"] == "Accepted"


async def test_expired_and_blocked_id_tags(csms: Running) -> None:
    await csms.put_station("CP-2")
    await csms.put_id_tag("OLD", expiry_date="2020-01-01T00:00:00Z")
    await csms.put_id_tag("BLOCKED", status="Blocked")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-2") as cp:
        old = (await cp.call("Authorize", {"idTag": "OLD"}))["idTagInfo"]
        assert old["status"] == "Expired"
        assert old["expiryDate"].startswith("2020-01-01")
        assert (await cp.call("Authorize", {"idTag": "BLOCKED"}))["idTagInfo"]["status"] == "Blocked"
        # A start with a blocked tag is still recorded (the station may already be charging) and answered.
        started = await cp.start_transaction(1, "BLOCKED", 0)
        assert started["idTagInfo"]["status"] == "Blocked"
        assert started["transactionId"] > 0


async def test_station_served_without_boot_on_this_connection(csms: Running) -> None:
    await csms.put_station("CP-3")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-3") as cp:
        assert "currentTime" in await cp.call("Heartbeat", {})
        tx = await cp.start_transaction(1, "ANY", 10)
        assert (await cp.stop_transaction(tx["transactionId"], 20)) == {}


async def test_id_tag_change_applies_at_once_despite_the_cache(csms: Running) -> None:
    await csms.put_station("CP-4")
    await csms.put_id_tag("CARD")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-4") as cp:
        assert (await cp.call("Authorize", {"idTag": "CARD"}))["idTagInfo"]["status"] == "Accepted"
        await csms.put_id_tag("CARD", status="Blocked")  # cached as Accepted a moment ago
        assert (await cp.call("Authorize", {"idTag": "CARD"}))["idTagInfo"]["status"] == "Blocked"
        async with csms.api() as api:
            assert (await api.delete("/api/v1/id-tags/CARD")).status_code == 204
        assert (await cp.call("Authorize", {"idTag": "CARD"}))["idTagInfo"]["status"] == "Invalid"
