"""Raising a 2.0.1 station's security profile (use case A05): SetNetworkProfile, SetVariables
NetworkConfigurationPriority, Reset OnIdle, each an audited command; the profile is stored only when all passed."""

from __future__ import annotations

import pytest

from devcluster import station201 as v201
from devcluster.station import Payload, SimulatedStation
from tests.integration.conftest import Running
from tests.integration.tls_fixtures import security_events

PASSWORD = "correct-horse-battery"
PUBLIC_URL = "wss://csms.example.com/ocpp/"
STEPS = ["SetNetworkProfile", "SetVariables", "Reset"]


@pytest.fixture
def replica_overrides() -> dict[str, str]:
    return {"CSMS_OCPP_PUBLIC_URL": PUBLIC_URL}


async def accepts(action: str, payload: Payload) -> Payload:
    if action == "SetVariables":
        return {
            "setVariableResult": [
                {"attributeStatus": "Accepted", "component": d["component"], "variable": d["variable"]}
                for d in payload["setVariableData"]
            ]
        }
    return {"status": "Accepted"}


async def rejects_network_profile(action: str, payload: Payload) -> Payload:
    return {"status": "Rejected"} if action == "SetNetworkProfile" else await accepts(action, payload)


async def raise_to_2(csms: Running, station_id: str, answer: object) -> tuple[int, dict, list[tuple[str, Payload]]]:
    await csms.put_station(station_id, password=PASSWORD)
    async with SimulatedStation.connect(
        csms.ocpp_url, station_id, password=PASSWORD, subprotocols=v201.SUBPROTOCOL_201, answer=answer
    ) as station:
        assert (await station.call("BootNotification", v201.boot()))["status"] == "Accepted"
        async with csms.api() as api:
            response = await api.post(f"/api/v1/stations/{station_id}/security-profile", json={"security_profile": 2})
        return response.status_code, response.json(), list(station.received_calls)


async def test_a_2_0_1_station_gets_a_network_profile_a_priority_and_a_reset(csms: Running) -> None:
    status, body, calls = await raise_to_2(csms, "CP20", accepts)
    assert status == 200, body
    assert body["accepted"] is True and body["failed_step"] is None
    assert [action for action, _ in calls if action in STEPS] == STEPS
    sent = dict(calls)
    assert sent["SetNetworkProfile"] == {
        "configurationSlot": 2,
        "connectionData": {
            "ocppVersion": "OCPP20",
            "ocppTransport": "JSON",
            "ocppCsmsUrl": PUBLIC_URL,
            "messageTimeout": 30,
            "securityProfile": 2,
            "ocppInterface": "Wired0",
        },
    }
    [priority] = sent["SetVariables"]["setVariableData"]
    assert priority["component"] == {"name": "OCPPCommCtrlr"}
    assert priority["variable"] == {"name": "NetworkConfigurationPriority"}
    assert priority["attributeValue"] == "2,1"  # the new slot first, the one in use now as the fallback
    assert sent["Reset"] == {"type": "OnIdle"}
    async with csms.api() as api:
        assert (await api.get("/api/v1/stations/CP20")).json()["security_profile"] == 2
        audit = (await api.get("/api/v1/commands", params={"station_id": "CP20"})).json()["items"]
        assert {c["action"] for c in audit} >= set(STEPS) and all(c["requested_by"] for c in audit)
        events = await security_events(api, "CP20", count=1)
        assert any(e["type"] == "SecurityProfileChange" and "accepted" in (e["tech_info"] or "") for e in events)


async def test_a_2_0_1_station_rejecting_the_network_profile_keeps_its_profile(csms: Running) -> None:
    status, body, calls = await raise_to_2(csms, "CP21", rejects_network_profile)
    assert status == 409, body
    assert body["accepted"] is False and body["failed_step"] == "SetNetworkProfile"
    assert body["command"]["action"] == "SetNetworkProfile"
    assert [action for action, _ in calls if action in STEPS] == ["SetNetworkProfile"]  # nothing after it
    async with csms.api() as api:
        assert (await api.get("/api/v1/stations/CP21")).json()["security_profile"] == 1
        events = await security_events(api, "CP21", count=1)
        assert any(
            "SetNetworkProfile" in (e["tech_info"] or "") for e in events if e["type"] == "SecurityProfileChange"
        )
