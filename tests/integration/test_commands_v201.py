"""OCPP 2.0.1 operator commands on one replica: the catalogue follows the station's negotiated version, 2.0.1
payloads are validated by its schemas and rules, every 2.0.1 operation is sent and audited, and a remote start
is on record before the station can act on it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devcluster import station201
from devcluster.station import SimulatedStation
from devcluster.v201_calls import PROFILE, REQUESTS, TOKEN, answer_v201
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration

V201 = station201.SUBPROTOCOL_201
SECRET = "test-internal-secret"


def v201(csms: Running, station_id: str, answer: Any = answer_v201) -> Any:
    return SimulatedStation.connect(csms.ocpp_url, station_id, subprotocols=V201, answer=answer)


@pytest.fixture
def replica_overrides() -> dict[str, str]:
    return {"CSMS_INTERNAL_SECRET": SECRET}


async def test_every_v201_operation_is_sent_validated_and_audited(csms: Running) -> None:
    await csms.put_station("CP-201")
    async with v201(csms, "CP-201") as cp, csms.api() as api:
        for action, payload in REQUESTS.items():
            response = await api.post(f"/api/v1/stations/CP-201/commands/{action}", json=payload)
            assert response.status_code == 200, (action, response.text)
            record = response.json()
            assert record["status"] == "completed" and record["protocol"] == "ocpp2.0.1", (action, record)
            assert (action, payload) in cp.received_calls, action
        audit = (await api.get("/api/v1/commands", params={"station_id": "CP-201", "limit": 100})).json()["items"]
        assert sorted(c["action"] for c in audit) == sorted(REQUESTS)
        assert {c["protocol"] for c in audit} == {"ocpp2.0.1"}
        station = (await api.get("/api/v1/stations/CP-201")).json()
        assert station["connected"] is True


async def test_the_catalogue_is_the_station_versions(csms: Running) -> None:
    await csms.put_station("CP-201")
    await csms.put_station("CP-16")
    async with v201(csms, "CP-201"), SimulatedStation.connect(csms.ocpp_url, "CP-16"), csms.api() as api:
        only_16 = await api.post("/api/v1/stations/CP-201/commands/RemoteStartTransaction", json={"idTag": "T"})
        assert only_16.status_code == 422, only_16.text
        error = only_16.json()["error"]
        assert "OCPP 2.0.1" in error["message"] and "ocpp2.0.1" in error["message"]
        assert "RequestStartTransaction" in error["details"]["allowed"]["ocpp2.0.1"]
        assert "RemoteStartTransaction" not in error["details"]["allowed"]["ocpp2.0.1"]

        only_201 = await api.post("/api/v1/stations/CP-16/commands/GetVariables", json=REQUESTS["GetVariables"])
        assert only_201.status_code == 422 and "OCPP 1.6" in only_201.json()["error"]["message"]

        # Both versions have Reset, with other bodies: each station is held to its own.
        assert (await api.post("/api/v1/stations/CP-201/commands/Reset", json={"type": "Soft"})).status_code == 422
        assert (await api.post("/api/v1/stations/CP-16/commands/Reset", json={"type": "OnIdle"})).status_code == 422
        assert (await api.post("/api/v1/stations/CP-201/commands/Reset", json={"type": "OnIdle"})).status_code == 200
        assert (await api.post("/api/v1/stations/CP-16/commands/Reset", json={"type": "Soft"})).status_code == 200

        template = await api.post(
            "/api/v1/stations/CP-201/commands/SetChargingProfile", json={"evseId": 1, "template": "night"}
        )
        assert template.status_code == 404 and "night" in template.json()["error"]["message"]

    # A station may switch version between connections: the next command follows.
    async with v201(csms, "CP-16"), csms.api() as api:
        now_201 = await api.post("/api/v1/stations/CP-16/commands/GetVariables", json=REQUESTS["GetVariables"])
        assert now_201.status_code == 200 and now_201.json()["protocol"] == "ocpp2.0.1", now_201.text


def _profile(**changes: Any) -> dict[str, Any]:
    profile = copy.deepcopy(PROFILE)
    profile.update(changes)
    return profile


def _schedule(**changes: Any) -> list[dict[str, Any]]:
    return [{**PROFILE["chargingSchedule"][0], **changes}]


BAD_V201: list[tuple[str, dict[str, Any], str]] = [
    ("SetChargingProfile", {"evseId": 1, "chargingProfile": _profile(chargingProfilePurpose="TxProfile")}, "K01.FR.03"),
    (
        "SetChargingProfile",
        {"evseId": 0, "chargingProfile": _profile(chargingProfilePurpose="TxProfile", transactionId="t")},
        "evseId must be > 0",
    ),
    (
        "SetChargingProfile",
        {"evseId": 1, "chargingProfile": _profile(chargingProfilePurpose="ChargingStationMaxProfile")},
        "evseId must be 0",
    ),
    (
        "SetChargingProfile",
        {"evseId": 0, "chargingProfile": _profile(chargingProfilePurpose="ChargingStationExternalConstraints")},
        "not for a CSMS",
    ),
    (
        "SetChargingProfile",
        {"evseId": 1, "chargingProfile": _profile(transactionId="t")},
        "only allowed on a TxProfile",
    ),
    (
        "SetChargingProfile",
        {"evseId": 1, "chargingProfile": _profile(chargingProfileKind="Absolute")},
        "startSchedule is required",
    ),
    (
        "SetChargingProfile",
        {"evseId": 1, "chargingProfile": _profile(chargingSchedule=_schedule(startSchedule="2030-01-01T00:00:00Z"))},
        "startSchedule is not allowed",
    ),
    (
        "SetChargingProfile",
        {
            "evseId": 1,
            "chargingProfile": _profile(
                chargingSchedule=_schedule(chargingSchedulePeriod=[{"startPeriod": 0, "limit": 1, "phaseToUse": 1}])
            ),
        },
        "phaseToUse",
    ),
    (
        "SetChargingProfile",
        {"evseId": 1, "chargingProfile": _profile(chargingSchedule=_schedule() + _schedule())},
        "ids must be unique",
    ),
    ("SetChargingProfile", {"evseId": 2**31, "chargingProfile": PROFILE}, "evseId must be between"),
    ("SetChargingProfile", {"evseId": 1, "chargingProfile": _profile(stackLevel=-1)}, "stackLevel"),
    (
        "RequestStartTransaction",
        {"remoteStartId": 1, "idToken": TOKEN, "chargingProfile": PROFILE},
        "must be a TxProfile",
    ),
    (
        "RequestStartTransaction",
        {
            "remoteStartId": 1,
            "idToken": TOKEN,
            "chargingProfile": _profile(chargingProfilePurpose="TxProfile", transactionId="t"),
        },
        "transactionId is not allowed",
    ),
    ("RequestStartTransaction", {"remoteStartId": 2**31, "idToken": TOKEN}, "remoteStartId must be between"),
    ("RequestStartTransaction", {"remoteStartId": 1, "idToken": TOKEN, "evseId": 0}, "evseId must be at least 1"),
    ("GetBaseReport", {"requestId": 2**31, "reportBase": "FullInventory"}, "requestId must be between"),
    ("GetCompositeSchedule", {"evseId": 1, "duration": 0}, "duration must be positive"),
    ("GetVariables", {"getVariableData": [{"component": {}, "variable": {"name": "x"}}]}, "component.name"),
]


async def test_v201_payloads_get_422_naming_the_rule(csms: Running) -> None:
    await csms.put_station("CP-201")
    async with v201(csms, "CP-201") as cp, csms.api() as api:
        for action, payload, expected in BAD_V201:
            response = await api.post(f"/api/v1/stations/CP-201/commands/{action}", json=payload)
            assert response.status_code == 422, (action, payload, response.text)
            assert expected in response.json()["error"]["message"], (expected, response.text)
        assert cp.received_calls == []  # nothing invalid reached the station


async def test_a_command_is_not_sent_on_a_connection_of_another_version(csms: Running) -> None:
    """The owner sends a command only in the version it was validated for (the station may have reconnected
    with another one while it was routed)."""
    await csms.put_station("CP-SWITCH")
    async with v201(csms, "CP-SWITCH") as cp, csms.api() as api:
        request = {
            "command_id": 1,
            "station_id": "CP-SWITCH",
            "action": "Reset",
            "payload": {"type": "Soft"},
            "timeout": 5,
            "protocol": "ocpp1.6",
        }
        response = await api.post(
            "/internal/v1/commands/execute", json=request, headers={"X-CSMS-Internal-Secret": SECRET}
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "failed"
        assert response.json()["error"]["code"] == "ProtocolChanged", response.text
        assert cp.received_calls == []


async def test_remote_start_is_on_record_before_the_station_acts_and_links_its_transaction(csms: Running) -> None:
    """A station that starts at once: its TransactionEvent(Started) with the remoteStartId reaches the CSMS
    before its answer to RequestStartTransaction does; the request is linked all the same."""
    started: list[dict[str, Any]] = []
    connected: list[SimulatedStation] = []

    async def station(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "RequestStartTransaction":
            event = station201.transaction_event(
                "Started",
                "tx-77",
                0,
                trigger_reason="RemoteStart",
                remote_start_id=payload["remoteStartId"],
                id_token=payload["idToken"]["idToken"],
                evse_id=payload["evseId"],
                connector_id=1,
                wh=1000,
            )
            started.append(await connected[0].call("TransactionEvent", event))
        return await answer_v201(action, payload)

    await csms.put_id_tag("TAG-201")
    await csms.put_station("CP-RS")
    async with v201(csms, "CP-RS", station) as cp, csms.api() as api:
        connected.append(cp)
        await cp.call("BootNotification", station201.boot())
        body = {"remoteStartId": 77, "idToken": TOKEN, "evseId": 1}
        response = await api.post("/api/v1/stations/CP-RS/commands/RequestStartTransaction", json=body)
        assert response.status_code == 200 and response.json()["result"] == {"status": "Accepted"}, response.text
        assert len(started) == 1  # the event was answered before the station answered the command

        [shown] = (await api.get("/api/v1/stations/CP-RS/operations")).json()["remote_starts"]
        assert (shown["remote_start_id"], shown["status"], shown["command_id"]) == (
            77,
            "Accepted",
            response.json()["id"],
        )
        assert (shown["id_token"], shown["id_token_type"], shown["evse_id"]) == ("TAG-201", "ISO14443", 1)
        assert shown["transaction_id"] == "tx-77" and shown["linked_at"] is not None
        [transaction] = (await api.get("/api/v1/transactions", params={"station_id": "CP-RS"})).json()["items"]
        assert transaction["remote_started"] is True and transaction["remote_start_id"] == 77

        # A retried event links the same request again; an id the CSMS never sent links nothing.
        retried = station201.transaction_event("Started", "tx-77", 0, trigger_reason="RemoteStart", remote_start_id=77)
        await cp.call("TransactionEvent", retried)
        unknown = station201.transaction_event("Started", "tx-78", 0, trigger_reason="RemoteStart", remote_start_id=78)
        await cp.call("TransactionEvent", unknown)
        assert (await api.get("/api/v1/stations/CP-RS/operations")).json()["remote_starts"] == [shown]
