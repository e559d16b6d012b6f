"""Password rotation: the station gets a new AuthorizationKey, the old password works until the station has
connected with the new one, a station that rejects keeps its password, and the password is never shown."""

from __future__ import annotations

import logging

import pytest

from devcluster.station import Payload, SimulatedStation, StationCallError, accept_everything
from tests.integration.conftest import Running
from tests.integration.tls_fixtures import boots, refused, security_events

OLD = "the-old-password-1"


def new_password(station: SimulatedStation) -> str:
    changes = [p for action, p in station.received_calls if action == "ChangeConfiguration"]
    assert changes and changes[-1]["key"] == "AuthorizationKey"
    return str(changes[-1]["value"])


async def test_rotation_keeps_the_old_password_until_the_new_one_is_used(
    csms: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await csms.put_station("CP1", password=OLD)
    async with SimulatedStation.connect(csms.ocpp_url, "CP1", password=OLD) as station, csms.api() as api:
        response = await api.post("/api/v1/stations/CP1/rotate-password")
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] is True
        new = new_password(station)
        assert len(new) == 40
        audit = (await api.get("/api/v1/commands", params={"station_id": "CP1"})).text
        station_view = (await api.get("/api/v1/stations/CP1")).json()
    for text in (response.text, audit, caplog.text, str(station_view)):
        assert new not in text
    assert station_view["password_rotation"] == "accepted"

    await boots(csms.ocpp_url, "CP1", password=OLD)  # not reconnected with the new one yet: the old still works
    await boots(csms.ocpp_url, "CP1", password=new)  # the station uses the new one...
    assert await refused(csms.ocpp_url, "CP1", password=OLD) == 401  # ...so the old one is gone
    await boots(csms.ocpp_url, "CP1", password=new)
    async with csms.api() as api:
        assert (await api.get("/api/v1/stations/CP1")).json()["password_rotation"] == "completed"
        events = await security_events(api, "CP1", count=1)
        assert any(e["type"] == "PasswordRotation" for e in events)


async def rejects_new_keys(action: str, payload: Payload) -> Payload:
    if action == "ChangeConfiguration":
        return {"status": "Rejected"}
    return await accept_everything(action, payload)


async def test_a_station_that_rejects_keeps_its_password(csms: Running) -> None:
    await csms.put_station("CP2", password=OLD)
    async with SimulatedStation.connect(csms.ocpp_url, "CP2", password=OLD, answer=rejects_new_keys) as station:
        async with csms.api() as api:
            response = await api.post("/api/v1/stations/CP2/rotate-password")
        assert response.status_code == 409, response.text
        assert response.json()["accepted"] is False
        refused_password = new_password(station)
    assert await refused(csms.ocpp_url, "CP2", password=refused_password) == 401
    await boots(csms.ocpp_url, "CP2", password=OLD)


async def fails_new_keys(action: str, payload: Payload) -> Payload:
    if action == "ChangeConfiguration":
        raise StationCallError("NotSupported", "no AuthorizationKey here")
    return await accept_everything(action, payload)


async def test_rotation_errors_and_raw_key_changes(csms: Running) -> None:
    await csms.put_station("CP3", password=OLD)
    await csms.put_station("CP0")
    async with csms.api() as api:
        offline = await api.post("/api/v1/stations/CP3/rotate-password")
        assert offline.status_code == 409 and offline.json()["command"]["status"] == "offline"
        assert (await api.post("/api/v1/stations/CP0/rotate-password")).status_code == 409  # no password to rotate
        assert (await api.post("/api/v1/stations/nope/rotate-password")).status_code == 404
        raw = await api.post(
            "/api/v1/stations/CP3/commands/ChangeConfiguration", json={"key": "AuthorizationKey", "value": "x" * 20}
        )
        assert raw.status_code == 422 and "rotate-password" in raw.text
        async with SimulatedStation.connect(csms.ocpp_url, "CP3", password=OLD, answer=fails_new_keys):
            failed = await api.post("/api/v1/stations/CP3/rotate-password")
            assert failed.status_code == 502 and failed.json()["accepted"] is False
    await boots(csms.ocpp_url, "CP3", password=OLD)


async def test_a_2_0_1_station_gets_basic_auth_password_through_set_variables(csms: Running) -> None:
    from devcluster import station201 as v201

    async def sets_variables(action: str, payload: Payload) -> Payload:
        assert action == "SetVariables"
        return {
            "setVariableResult": [
                {"attributeStatus": "Accepted", "component": d["component"], "variable": d["variable"]}
                for d in payload["setVariableData"]
            ]
        }

    await csms.put_station("CP201", password=OLD)
    url = csms.ocpp_url
    async with SimulatedStation.connect(
        url, "CP201", password=OLD, subprotocols=v201.SUBPROTOCOL_201, answer=sets_variables
    ) as station:
        assert (await station.call("BootNotification", v201.boot()))["status"] == "Accepted"
        async with csms.api() as api:
            response = await api.post("/api/v1/stations/CP201/rotate-password")
            assert response.status_code == 200, response.text
            [data] = response.json()["command"]["payload"]["setVariableData"]
            assert data["variable"]["name"] == "BasicAuthPassword" and data["attributeValue"].startswith("(new")
            raised = await api.post("/api/v1/stations/CP201/security-profile", json={"security_profile": 2})
            assert raised.status_code == 409 and "SetNetworkProfile" in raised.text  # not built for 2.0.1
        [(_, sent)] = [(a, p) for a, p in station.received_calls if a == "SetVariables"]
        new = sent["setVariableData"][0]["attributeValue"]
    async with SimulatedStation.connect(url, "CP201", password=new, subprotocols=v201.SUBPROTOCOL_201) as station:
        assert (await station.call("BootNotification", v201.boot()))["status"] == "Accepted"
    assert await refused(url, "CP201", password=OLD, subprotocols=v201.SUBPROTOCOL_201) == 401
