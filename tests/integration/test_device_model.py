"""The OCPP 2.0.1 device model: a simulated station answers GetBaseReport, then sends its NotifyReport in
parts (out of order, one of them twice); the API shows every variable with its attributes and
characteristics, filtered and paged, the report tied to the request, and values kept current by
SetVariables and GetVariables answers.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devcluster import station201
from devcluster.station import SimulatedStation
from devcluster.v201_calls import DeviceModelStation
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration

BASE = "/api/v1/stations/CP-DM"


async def variables(api: httpx.AsyncClient, station: str = "CP-DM", **params: Any) -> list[dict[str, Any]]:
    response = await api.get(f"/api/v1/stations/{station}/variables", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def by_name(items: list[dict[str, Any]], variable: str) -> dict[str, Any]:
    [found] = [item for item in items if item["variable"]["name"] == variable]
    return found


def attribute(item: dict[str, Any], kind: str = "Actual") -> dict[str, Any]:
    [found] = [a for a in item["attributes"] if a["type"] == kind]
    return found


async def report(api: httpx.AsyncClient, request_id: int) -> dict[str, Any]:
    [found] = [r for r in (await api.get(f"{BASE}/reports")).json()["items"] if r["request_id"] == request_id]
    return found


async def test_base_report_in_parts_then_set_and_get_variables(csms: Running) -> None:
    model = DeviceModelStation()
    await csms.put_station("CP-DM")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-DM", subprotocols=["ocpp2.0.1"], answer=model.answer) as cp,
        csms.api() as api,
    ):
        await cp.call("BootNotification", station201.boot())  # until a boot is accepted, no NotifyReport (B02)
        asked = await api.post(f"{BASE}/commands/GetBaseReport", json={"requestId": 42, "reportBase": "FullInventory"})
        assert asked.status_code == 200 and asked.json()["result"] == {"status": "Accepted"}, asked.text
        tracked = await report(api, 42)
        assert tracked["action"] == "GetBaseReport" and tracked["command_id"] == asked.json()["id"]
        assert tracked["answer"] == "Accepted" and tracked["parts"] == 0 and tracked["complete"] is False

        parts = list(model.parts(42, per_part=2))
        assert [p["tbc"] for p in parts] == [True, True, False]
        for part in (parts[2], parts[0], parts[0]):  # the last first, and one retried
            assert await cp.call("NotifyReport", part) == {}
        halfway = await report(api, 42)
        assert halfway["parts"] == 2 and halfway["last_seq_no"] == 2 and halfway["complete"] is False
        assert await cp.call("NotifyReport", parts[1]) == {}
        done = await report(api, 42)
        assert done["complete"] is True and done["parts"] == 3 and done["variables"] == len(model.variables)

        items = await variables(api)
        assert len(items) == len(model.variables)
        heartbeat = by_name(items, "HeartbeatInterval")
        assert heartbeat["component"] == {"name": "OCPPCommCtrlr"} and heartbeat["report_request_id"] == 42
        assert heartbeat["characteristics"] == {"dataType": "integer", "supportsMonitoring": True, "unit": "s"}
        assert [a["type"] for a in heartbeat["attributes"]] == ["Actual", "MaxSet"]
        actual = attribute(heartbeat)
        assert (actual["value"], actual["mutability"], actual["source"]) == ("300", "ReadWrite", "NotifyReport")
        assert attribute(heartbeat, "MaxSet")["constant"] is True
        connector = by_name(items, "ConnectorType")
        assert connector["component"] == {"name": "Connector", "evse": {"id": 1, "connectorId": 1}}
        power = by_name(items, "Power")
        assert power["variable"] == {"name": "Power", "instance": "Max"}

        # Filters and pages.
        assert len(await variables(api, component="OCPPCommCtrlr")) == 2
        assert [i["variable"]["name"] for i in await variables(api, variable="Power")] == ["Power"]
        assert await variables(api, component="Nope") == []
        first = (await api.get(f"{BASE}/variables", params={"limit": 4})).json()
        second = (await api.get(f"{BASE}/variables", params={"limit": 4, "after": first["next"]})).json()
        assert len(first["items"]) == 4 and len(second["items"]) == 2 and second["next"] is None
        assert {i["id"] for i in first["items"]}.isdisjoint(i["id"] for i in second["items"])

        # SetVariables keeps the model current: accepted, accepted for the next reboot, rejected.
        data = [
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
                "attributeValue": "120",
            },
            {
                "component": {"name": "SampledDataCtrlr"},
                "variable": {"name": "TxUpdatedInterval"},
                "attributeValue": "2",
            },
            {
                "component": {"name": "EVSE", "evse": {"id": 1}},
                "variable": {"name": "Power", "instance": "Max"},
                "attributeValue": "1",
            },
        ]
        answered = await api.post(f"{BASE}/commands/SetVariables", json={"setVariableData": data})
        statuses = [r["attributeStatus"] for r in answered.json()["result"]["setVariableResult"]]
        assert statuses == ["Accepted", "RebootRequired", "Rejected"]
        items = await variables(api)
        actual = attribute(by_name(items, "HeartbeatInterval"))
        assert (actual["value"], actual["source"], actual["mutability"]) == ("120", "SetVariables", "ReadWrite")
        assert attribute(by_name(items, "HeartbeatInterval"), "MaxSet")["value"] == "3600"  # untouched
        sampled = attribute(by_name(items, "TxUpdatedInterval"))
        assert (sampled["value"], sampled["reboot_required"]) == ("2", True)
        assert attribute(by_name(items, "Power"))["value"] == "22000"

        # GetVariables answers update what the station said last.
        model.variables[1].value = "5"
        get = {
            "getVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": n}}
                for n in (
                    "NetworkProfileConnectionAttempts",
                    "NoSuchVariable",
                )
            ]
        }
        assert (await api.post(f"{BASE}/commands/GetVariables", json=get)).status_code == 200
        attempts = attribute(by_name(await variables(api), "NetworkProfileConnectionAttempts"))
        assert (attempts["value"], attempts["source"]) == ("5", "GetVariables")
        assert len(await variables(api)) == len(model.variables)  # an unknown variable is not invented


async def test_unsolicited_report_and_stations_apart(csms: Running) -> None:
    model = DeviceModelStation()
    await csms.put_station("CP-DM")
    await csms.put_station("CP-OTHER")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-DM", subprotocols=["ocpp2.0.1"], answer=model.answer) as cp,
        csms.api() as api,
    ):
        await cp.call("BootNotification", station201.boot())
        [part] = list(model.parts(5, per_part=10))
        assert await cp.call("NotifyReport", part) == {}
        unsolicited = await report(api, 5)
        assert unsolicited["action"] is None and unsolicited["command_id"] is None and unsolicited["complete"] is True
        assert len(await variables(api)) == len(model.variables)
        assert await variables(api, "CP-OTHER") == []
        assert (await api.get("/api/v1/stations/NOPE/variables")).status_code == 404
        assert (await api.get(f"{BASE}/variables", params={"component": "x" * 51})).status_code == 400
        assert (await api.get(f"{BASE}/variables", params={"after": "-1"})).status_code == 400
