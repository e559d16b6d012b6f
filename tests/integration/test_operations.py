"""The domain behind operator operations, end to end on one replica: each command's effect is recorded and the
station's later messages close the loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from csms.operations import OperationsRecorder
from csms.storage import Database
from devcluster.station import SimulatedStation, accept_everything
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration


async def capable_station(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    if action == "GetConfiguration":
        return {
            "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
            "unknownKey": ["NoSuchKey"],
        }
    if action == "GetDiagnostics":
        return {"fileName": "diag-001.tar.gz"}
    if action == "GetCompositeSchedule":
        return {
            "status": "Accepted",
            "connectorId": payload["connectorId"],
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
            },
        }
    if action == "GetLocalListVersion":
        return {"listVersion": 7}
    return await accept_everything(action, payload)


def _in(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


async def _command(api: httpx.AsyncClient, station: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(f"/api/v1/stations/{station}/commands/{action}", json=payload)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_reservation_is_consumed_by_start_transaction(csms: Running) -> None:
    await csms.put_station("CP-R")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-R") as cp, csms.api() as api:
        await _command(
            api, "CP-R", "ReserveNow", {"connectorId": 1, "expiryDate": _in(30), "idTag": "TAG", "reservationId": 11}
        )
        await _command(
            api, "CP-R", "ReserveNow", {"connectorId": 2, "expiryDate": _in(30), "idTag": "TAG", "reservationId": 12}
        )
        await _command(api, "CP-R", "CancelReservation", {"reservationId": 12})
        started = await cp.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": _in(0), "reservationId": 11},
        )
        reservations = (await api.get("/api/v1/reservations", params={"station_id": "CP-R"})).json()["items"]
    by_id = {r["reservation_id"]: r for r in reservations}
    assert by_id[11]["status"] == "Used" and by_id[11]["transaction_id"] == started["transactionId"]
    assert by_id[12]["status"] == "Cancelled"


async def test_reservations_expire(db: Database) -> None:
    from csms import operations

    await db.migrate([("operations", operations.MIGRATIONS)])
    await db.execute(
        "INSERT INTO reservations (station_id, reservation_id, connector_id, id_tag, expiry_date, status)"
        " VALUES ('S', 1, 1, 'T', now() - interval '1 minute', 'Active'),"
        "        ('S', 2, 1, 'T', now() + interval '1 hour', 'Active')"
    )
    assert await OperationsRecorder(db).expire_reservations() == 1
    rows = await db.fetch("SELECT reservation_id, status FROM reservations ORDER BY reservation_id")
    assert [(r["reservation_id"], r["status"]) for r in rows] == [(1, "Expired"), (2, "Active")]


async def test_charging_profiles_are_validated_stored_and_cleared(csms: Running) -> None:
    await csms.put_station("CP-SC")
    profile = {
        "chargingProfileId": 5,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "startSchedule": _in(0),
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 32.0}, {"startPeriod": 3600, "limit": 16.0}],
        },
    }
    async with SimulatedStation.connect(csms.ocpp_url, "CP-SC", answer=capable_station), csms.api() as api:
        base = "/api/v1/stations/CP-SC/commands"
        unordered = {
            **profile,
            "chargingSchedule": {
                **profile["chargingSchedule"],
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 32.0}, {"startPeriod": 0, "limit": 16.0}],
            },
        }
        bad = await api.post(f"{base}/SetChargingProfile", json={"connectorId": 1, "csChargingProfiles": unordered})
        assert bad.status_code == 422 and "startPeriod must increase" in bad.json()["error"]["message"]
        max_on_connector = {**profile, "chargingProfilePurpose": "ChargePointMaxProfile"}
        bad = await api.post(
            f"{base}/SetChargingProfile", json={"connectorId": 1, "csChargingProfiles": max_on_connector}
        )
        assert bad.status_code == 422 and "connectorId must be 0" in bad.json()["error"]["message"]

        await _command(api, "CP-SC", "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile})
        await _command(api, "CP-SC", "GetCompositeSchedule", {"connectorId": 1, "duration": 3600})
        state = (await api.get("/api/v1/stations/CP-SC/operations")).json()
        assert [p["charging_profile_id"] for p in state["charging_profiles"]] == [5]
        assert state["charging_profiles"][0]["profile"]["stackLevel"] == 1
        assert state["composite_schedules"][0]["result"]["status"] == "Accepted"

        await _command(api, "CP-SC", "ClearChargingProfile", {"id": 5})
        assert (await api.get("/api/v1/stations/CP-SC/operations")).json()["charging_profiles"] == []


async def test_configuration_availability_and_jobs(csms: Running) -> None:
    await csms.put_station("CP-CF")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-CF", answer=capable_station) as cp, csms.api() as api:
        await _command(api, "CP-CF", "GetConfiguration", {})
        await _command(api, "CP-CF", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"})
        await _command(api, "CP-CF", "ChangeAvailability", {"connectorId": 2, "type": "Inoperative"})
        await _command(
            api, "CP-CF", "UpdateFirmware", {"location": "https://fw.example/1.2.bin", "retrieveDate": _in(0)}
        )
        await cp.call("FirmwareStatusNotification", {"status": "Downloading"})
        await _command(api, "CP-CF", "GetDiagnostics", {"location": "ftp://diag.example/"})
        await cp.call("DiagnosticsStatusNotification", {"status": "Uploaded"})
        state = (await api.get("/api/v1/stations/CP-CF/operations")).json()
    config = {c["key"]: (c["value"], c["known"]) for c in state["configuration"]}
    assert config == {"HeartbeatInterval": ("60", True), "NoSuchKey": (None, False)}
    assert [(a["connector_id"], a["availability"], a["answer"]) for a in state["availability"]] == [
        (2, "Inoperative", "Accepted")
    ]
    jobs = {j["kind"]: (j["status"], j["file_name"]) for j in state["jobs"]}
    assert jobs == {"firmware": ("Downloading", None), "diagnostics": ("Uploaded", "diag-001.tar.gz")}


async def test_remote_start_marks_the_transaction(csms: Running) -> None:
    await csms.put_station("CP-RS")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-RS") as cp, csms.api() as api:
        await _command(api, "CP-RS", "RemoteStartTransaction", {"connectorId": 1, "idTag": "APP-USER"})
        remote = (await cp.start_transaction(1, "APP-USER", 0))["transactionId"]
        local = (await cp.start_transaction(2, "CARD", 0))["transactionId"]
        assert (await api.get(f"/api/v1/transactions/{remote}")).json()["remote_started"] is True
        assert (await api.get(f"/api/v1/transactions/{local}")).json()["remote_started"] is False


async def test_a_start_sent_before_the_remote_start_answer_is_linked(csms: Running) -> None:
    """Stations often send StartTransaction before (or while) their RemoteStartTransaction answer is recorded:
    the remote start is on record before the station is asked, so that start is still the remote one."""
    await csms.put_station("CP-RS2")
    started: dict[str, Any] = {}

    async def start_first(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "RemoteStartTransaction":
            started["tx"] = (await started["cp"].start_transaction(1, payload["idTag"], 0))["transactionId"]
        return await accept_everything(action, payload)

    async with SimulatedStation.connect(csms.ocpp_url, "CP-RS2", answer=start_first) as cp, csms.api() as api:
        started["cp"] = cp
        await _command(api, "CP-RS2", "RemoteStartTransaction", {"connectorId": 1, "idTag": "APP-USER"})
        assert (await api.get(f"/api/v1/transactions/{started['tx']}")).json()["remote_started"] is True


async def test_a_remote_start_refused_or_never_sent_is_no_remote_start(csms: Running) -> None:
    """Only a start the station may have accepted is linked: a refused request, or one for a station that was
    offline, leaves a later local start with the same tag a local one."""
    await csms.put_station("CP-RS3")

    async def refuse(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "RemoteStartTransaction":
            return {"status": "Rejected"}
        return await accept_everything(action, payload)

    async with csms.api() as api:
        offline = await api.post(
            "/api/v1/stations/CP-RS3/commands/RemoteStartTransaction", json={"connectorId": 1, "idTag": "OFF"}
        )
        assert offline.json()["status"] == "offline", offline.text
        async with SimulatedStation.connect(csms.ocpp_url, "CP-RS3", answer=refuse) as cp:
            refused = await api.post(
                "/api/v1/stations/CP-RS3/commands/RemoteStartTransaction", json={"connectorId": 1, "idTag": "NO"}
            )
            assert refused.json()["result"] == {"status": "Rejected"}, refused.text
            for connector, tag in ((1, "NO"), (2, "OFF")):
                tx = (await cp.start_transaction(connector, tag, 0))["transactionId"]
                assert (await api.get(f"/api/v1/transactions/{tx}")).json()["remote_started"] is False, tag


async def test_local_list_full_then_differential(csms: Running) -> None:
    await csms.put_station("CP-LL")
    await csms.put_id_tag("A-TAG")
    await csms.put_id_tag("B-TAG", status="Blocked")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-LL", answer=capable_station) as cp, csms.api() as api:
        full = await api.post("/api/v1/stations/CP-LL/local-list", json={"update_type": "Full"})
        assert full.status_code == 200, full.text
        sent = full.json()["payload"]
        assert sent["listVersion"] == 1 and sent["updateType"] == "Full"
        assert [e["idTag"] for e in sent["localAuthorizationList"]] == ["A-TAG", "B-TAG"]
        await csms.put_id_tag("C-TAG")
        diff = (await api.post("/api/v1/stations/CP-LL/local-list", json={"update_type": "Differential"})).json()
        assert diff["payload"]["listVersion"] == 2
        assert [e["idTag"] for e in diff["payload"]["localAuthorizationList"]] == ["C-TAG"]
        await _command(api, "CP-LL", "GetLocalListVersion", {})
        state = (await api.get("/api/v1/stations/CP-LL/operations")).json()
        assert (await api.post("/api/v1/stations/CP-LL/local-list", json={"update_type": "Some"})).status_code == 422
    assert state["local_list"]["sent_version"] == 2 and state["local_list"]["reported_version"] == 7
    assert [a for a, _ in cp.received_calls if a == "SendLocalList"] == ["SendLocalList", "SendLocalList"]
