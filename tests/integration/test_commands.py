"""Operator commands on one replica: validation, answers, CallErrors, silence, offline, async and the audit."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from devcluster.station import SimulatedStation, StationCallError, accept_everything
from tests.integration.conftest import READ_TOKEN, Running

pytestmark = pytest.mark.integration


async def picky_station(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    if action == "Reset":
        return {"status": "Rejected"}
    if action == "UnlockConnector":
        raise StationCallError("NotSupported", "no locks here")
    if action == "ClearCache":
        await trio.sleep(60)  # silence
    if action == "GetLocalListVersion":
        return {"listVersion": "not a number"}  # breaks the response schema
    return await accept_everything(action, payload)


async def test_command_answers(csms: Running) -> None:
    await csms.put_station("CP-C")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-C", answer=picky_station) as cp, csms.api() as api:
        base = "/api/v1/stations/CP-C/commands"
        ok = await api.post(f"{base}/ChangeAvailability", json={"connectorId": 1, "type": "Inoperative"})
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["status"] == "completed" and body["result"] == {"status": "Accepted"}
        assert body["executed_by"] == "test-node" and body["latency_ms"] >= 0
        assert ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}) in cp.received_calls

        rejected = await api.post(f"{base}/Reset", json={"type": "Hard"})
        assert rejected.status_code == 200 and rejected.json()["result"] == {"status": "Rejected"}

        error = await api.post(f"{base}/UnlockConnector", json={"connectorId": 1})
        assert error.status_code == 502
        assert error.json()["error"]["code"] == "NotSupported"

        silent = await api.post(f"{base}/ClearCache", json={}, params={"timeout": "0.5"})
        assert silent.status_code == 504 and silent.json()["status"] == "timeout"

        invalid_answer = await api.post(f"{base}/GetLocalListVersion", json={})
        assert invalid_answer.status_code == 502

        audit = (await api.get("/api/v1/commands", params={"station_id": "CP-C"})).json()["items"]
        assert [c["action"] for c in audit] == [
            "GetLocalListVersion",
            "ClearCache",
            "UnlockConnector",
            "Reset",
            "ChangeAvailability",
        ]
        assert all((c["requested_by"], c["requested_role"]) == ("token:ci-admin", "admin") for c in audit)


async def test_command_validation_and_routing_errors(csms: Running) -> None:
    await csms.put_station("CP-OFF")
    async with csms.api() as api:
        bad = await api.post("/api/v1/stations/CP-OFF/commands/Reset", json={"type": "Gentle"})
        assert bad.status_code == 422 and "type" in bad.json()["error"]["message"]
        missing = await api.post("/api/v1/stations/CP-OFF/commands/ChangeAvailability", json={"connectorId": 1})
        assert missing.status_code == 422
        wrong_way = await api.post("/api/v1/stations/CP-OFF/commands/BootNotification", json={})
        assert wrong_way.status_code == 422
        unknown_station = await api.post("/api/v1/stations/NOPE/commands/ClearCache", json={})
        assert unknown_station.status_code == 404
        offline = await api.post("/api/v1/stations/CP-OFF/commands/ClearCache", json={})
        assert offline.status_code == 409
        assert offline.json()["status"] == "offline"
        assert "not connected" in offline.json()["error"]["description"]
    async with csms.api(READ_TOKEN) as reader:
        assert (await reader.post("/api/v1/stations/CP-OFF/commands/ClearCache", json={})).status_code == 403


async def test_async_command_is_polled(csms: Running) -> None:
    await csms.put_station("CP-ASYNC")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-ASYNC"), csms.api() as api:
        accepted = await api.post(
            "/api/v1/stations/CP-ASYNC/commands/GetConfiguration",
            json={"key": ["HeartbeatInterval"]},
            params={"async": "true"},
        )
        assert accepted.status_code == 202
        command_id = accepted.json()["id"]
        with trio.fail_after(10):
            while (record := (await api.get(f"/api/v1/commands/{command_id}")).json())["status"] == "pending":
                await trio.sleep(0.05)
        assert record["status"] == "completed"
        assert record["result"] == {"configurationKey": [], "unknownKey": []}
        assert record["async"] is True


async def test_internal_endpoint_needs_the_secret(csms: Running) -> None:
    async with csms.api() as api:
        response = await api.post("/internal/v1/commands/execute", json={})
        assert response.status_code == 403  # no secret configured: closed, even to admin tokens
        response = await api.post("/internal/v1/shed", json={"count": 1}, headers={"X-CSMS-Internal-Secret": ""})
        assert response.status_code == 403


@pytest.mark.parametrize("replica_overrides", [{"CSMS_CALL_TIMEOUT": "3", "CSMS_RECLAIM_TRIGGER": "none"}])
async def test_station_that_drops_the_socket_mid_command_is_reported_disconnected(csms: Running) -> None:
    """A hard Reset answered by dropping the socket (no CallResult) is a disconnect, not "ownership moved"; so is
    any command whose station leaves mid-call and does not come back."""
    await csms.put_station("CP-DROP")
    stations: list[SimulatedStation] = []

    async def drop_when_called(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action in ("Reset", "ChangeConfiguration"):
            await stations[-1].ws.aclose()
            raise trio.TooSlowError  # the simulator's way of staying silent
        return await accept_everything(action, payload)

    async with csms.api() as api:
        for action, payload, wanted in [
            ("Reset", {"type": "Hard"}, "expected for a hard reset"),
            ("ChangeConfiguration", {"key": "K", "value": "V"}, "disconnected before answering ChangeConfiguration"),
        ]:
            async with SimulatedStation.connect(csms.ocpp_url, "CP-DROP", answer=drop_when_called) as station:
                stations.append(station)
                response = await api.post(f"/api/v1/stations/CP-DROP/commands/{action}", json=payload)
            body = response.json()
            assert response.status_code == 503 and body["status"] == "unknown_outcome", body
            assert body["error"]["code"] == "StationDisconnected", body
            assert wanted in body["error"]["description"], body
