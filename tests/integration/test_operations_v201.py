"""OCPP 2.0.1 operations in the same domain as 1.6 (issue 10 item 5): each command's effect is visible through
the same API shapes (with the version and 2.0.1's own fields), the station's notifications update it, and the
server fills the ids an operator leaves out."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from csms import operations
from csms.storage import Database
from devcluster import station201
from devcluster.station import SimulatedStation
from devcluster.v201_calls import PROFILE, REQUESTS, TOKEN, answer_v201
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration

SERVER_IDS_FROM = 1_000_000  # the request-id sequence starts above hand-picked ids


def _in(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


async def answer(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A cooperative 2.0.1 station that also names the file its log upload will have."""
    if action == "GetLog":
        return {"status": "Accepted", "filename": f"log-{payload['requestId']}.zip"}
    if action == "GetLocalListVersion":
        return {"versionNumber": 5}
    return await answer_v201(action, payload)


def v201(csms: Running, station_id: str) -> Any:
    return SimulatedStation.connect(csms.ocpp_url, station_id, subprotocols=station201.SUBPROTOCOL_201, answer=answer)


async def _command(api: httpx.AsyncClient, station: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(f"/api/v1/stations/{station}/commands/{action}", json=payload)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed", response.text
    return response.json()  # type: ignore[no-any-return]


async def _operations(api: httpx.AsyncClient, station: str) -> dict[str, Any]:
    return (await api.get(f"/api/v1/stations/{station}/operations")).json()  # type: ignore[no-any-return]


async def _reservation(api: httpx.AsyncClient, station: str, reservation_id: int) -> dict[str, Any]:
    response = await api.get(f"/api/v1/reservations/{reservation_id}", params={"station_id": station})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_reservations_are_recorded_consumed_ended_and_cancelled(csms: Running) -> None:
    await csms.put_id_tag("TAG-201")
    await csms.put_station("CP-RES")
    async with v201(csms, "CP-RES") as cp, csms.api() as api:
        await cp.call("BootNotification", station201.boot())
        # No id given: the server fills it from the reservation sequence; it is what the station received.
        record = await _command(api, "CP-RES", "ReserveNow", {"expiryDateTime": _in(30), "idToken": TOKEN, "evseId": 1})
        used_id = record["payload"]["id"]
        assert ("ReserveNow", record["payload"]) in cp.received_calls
        shown = await _reservation(api, "CP-RES", used_id)
        assert {k: shown[k] for k in ("status", "protocol", "evse_id", "connector_id", "id_tag", "id_token_type")} == {
            "status": "Active",
            "protocol": "ocpp2.0.1",
            "evse_id": 1,
            "connector_id": 0,
            "id_tag": "TAG-201",
            "id_token_type": "ISO14443",
        }
        for reservation_id in (21, 22, 23):
            body = {"id": reservation_id, "expiryDateTime": _in(30), "idToken": TOKEN, "connectorType": "cType2"}
            await _command(api, "CP-RES", "ReserveNow", body)

        # TransactionEvent(Started) on the reservation uses it, linked to the transaction.
        event = station201.transaction_event("Started", "tx-r", 0, id_token="TAG-201", evse_id=1, connector_id=1)
        await cp.call("TransactionEvent", {**event, "reservationId": used_id})
        [transaction] = (await api.get("/api/v1/transactions", params={"station_id": "CP-RES"})).json()["items"]
        used = await _reservation(api, "CP-RES", used_id)
        assert (used["status"], used["transaction_id"]) == ("Used", transaction["id"])

        # The station ends reservations itself (Expired, Removed); the operator cancels one.
        await cp.call("ReservationStatusUpdate", {"reservationId": 21, "reservationUpdateStatus": "Expired"})
        await cp.call("ReservationStatusUpdate", {"reservationId": 22, "reservationUpdateStatus": "Removed"})
        await _command(api, "CP-RES", "CancelReservation", {"reservationId": 23})
        statuses = {r: (await _reservation(api, "CP-RES", r))["status"] for r in (21, 22, 23)}
        assert statuses == {21: "Expired", 22: "Removed", 23: "Cancelled"}
        assert (await _reservation(api, "CP-RES", 21))["connector_type"] == "cType2"
        removed = (await api.get("/api/v1/reservations", params={"status": "Removed"})).json()["items"]
        assert [r["reservation_id"] for r in removed] == [22]


async def test_charging_profiles_are_stored_per_evse_replaced_and_cleared(csms: Running) -> None:
    await csms.put_station("CP-SC")
    station_max = {**PROFILE, "id": 2, "chargingProfilePurpose": "ChargingStationMaxProfile"}
    tx_profile = {**PROFILE, "id": 3, "stackLevel": 1, "chargingProfilePurpose": "TxProfile", "transactionId": "tx-9"}
    async with v201(csms, "CP-SC"), csms.api() as api:
        await _command(api, "CP-SC", "SetChargingProfile", {"evseId": 1, "chargingProfile": PROFILE})
        await _command(api, "CP-SC", "SetChargingProfile", {"evseId": 0, "chargingProfile": station_max})
        await _command(api, "CP-SC", "SetChargingProfile", {"evseId": 2, "chargingProfile": tx_profile})
        # Same purpose and stack level on the same EVSE: replaces the first one.
        await _command(api, "CP-SC", "SetChargingProfile", {"evseId": 1, "chargingProfile": {**PROFILE, "id": 4}})
        profiles = (await _operations(api, "CP-SC"))["charging_profiles"]
        shown = {(p["charging_profile_id"], p["evse_id"], p["purpose"], p["station_tx_id"]) for p in profiles}
        assert shown == {
            (2, 0, "ChargingStationMaxProfile", None),
            (3, 2, "TxProfile", "tx-9"),
            (4, 1, "TxDefaultProfile", None),
        }
        assert {p["protocol"] for p in profiles} == {"ocpp2.0.1"}
        assert next(p for p in profiles if p["charging_profile_id"] == 3)["profile"] == tx_profile

        await _command(api, "CP-SC", "ClearChargingProfile", {"chargingProfileCriteria": {"evseId": 2}})
        await _command(api, "CP-SC", "ClearChargingProfile", {"chargingProfileId": 4})
        profiles = (await _operations(api, "CP-SC"))["charging_profiles"]
        assert [p["charging_profile_id"] for p in profiles] == [2]


async def test_availability_and_composite_schedules_are_kept_per_evse_and_connector(csms: Running) -> None:
    await csms.put_station("CP-AV")
    async with v201(csms, "CP-AV"), csms.api() as api:
        await _command(api, "CP-AV", "ChangeAvailability", {"operationalStatus": "Operative"})
        await _command(api, "CP-AV", "ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 1}})
        body = {"operationalStatus": "Inoperative", "evse": {"id": 2, "connectorId": 1}}
        await _command(api, "CP-AV", "ChangeAvailability", body)
        await _command(api, "CP-AV", "ChangeAvailability", {"operationalStatus": "Operative", "evse": {"id": 1}})
        await _command(api, "CP-AV", "GetCompositeSchedule", {"duration": 600, "evseId": 2})
        state = await _operations(api, "CP-AV")
        [schedule] = state["composite_schedules"]
        assert (schedule["evse_id"], schedule["connector_id"], schedule["duration"]) == (2, 0, 600)
        rows = state["availability"]
        assert [(a["evse_id"], a["connector_id"], a["availability"], a["answer"]) for a in rows] == [
            (0, 0, "Operative", "Accepted"),
            (1, 0, "Operative", "Accepted"),
            (2, 1, "Inoperative", "Accepted"),
        ]


async def test_firmware_and_log_jobs_follow_the_notifications_with_their_request_id(csms: Running) -> None:
    await csms.put_station("CP-JOB")
    firmware = {"firmware": {"location": "https://fw.example/3.bin", "retrieveDateTime": _in(0)}}
    async with v201(csms, "CP-JOB") as cp, csms.api() as api:
        await cp.call("BootNotification", station201.boot())
        first = (await _command(api, "CP-JOB", "UpdateFirmware", firmware))["payload"]["requestId"]
        second = (await _command(api, "CP-JOB", "UpdateFirmware", {**firmware, "requestId": 42}))["payload"]
        log_body = {"logType": "DiagnosticsLog", "log": {"remoteLocation": "ftp://logs.example/"}}
        log_id = (await _command(api, "CP-JOB", "GetLog", log_body))["payload"]["requestId"]
        assert first >= SERVER_IDS_FROM and log_id > first and second["requestId"] == 42

        # The older job's notification updates that job, not the newest firmware job.
        await cp.call("FirmwareStatusNotification", {"status": "Downloading", "requestId": first})
        await cp.call("LogStatusNotification", {"status": "Uploading", "requestId": log_id})
        jobs = {j["request_id"]: j for j in (await _operations(api, "CP-JOB"))["jobs"]}
        assert {r: (j["kind"], j["status"]) for r, j in jobs.items()} == {
            first: ("firmware", "Downloading"),
            42: ("firmware", "Requested"),
            log_id: ("log", "Uploading"),
        }
        assert (jobs[log_id]["file_name"], jobs[log_id]["location"]) == (f"log-{log_id}.zip", "ftp://logs.example/")
        assert jobs[42]["location"] == "https://fw.example/3.bin" and jobs[42]["protocol"] == "ocpp2.0.1"


async def test_the_local_list_sync_sends_typed_id_tokens_and_keeps_the_versions(csms: Running) -> None:
    await csms.put_id_tag("CARD-1", parent_id_tag="FLEET")
    await csms.put_id_tag("EMAID-1", type="eMAID")
    await csms.put_station("CP-LL")
    async with v201(csms, "CP-LL") as cp, csms.api() as api:
        response = await api.post("/api/v1/stations/CP-LL/local-list", json={"update_type": "Full"})
        assert response.status_code == 200, response.text
        [sent] = [p for action, p in cp.received_calls if action == "SendLocalList"]
        assert sent == {
            "versionNumber": 1,
            "updateType": "Full",
            "localAuthorizationList": [
                {
                    "idToken": {"idToken": "CARD-1", "type": "ISO14443"},
                    "idTokenInfo": {"status": "Accepted", "groupIdToken": {"idToken": "FLEET", "type": "Central"}},
                },
                {"idToken": {"idToken": "EMAID-1", "type": "eMAID"}, "idTokenInfo": {"status": "Accepted"}},
            ],
        }
        # Nothing changed since: a Differential sync sends no entries (2.0.1 leaves the empty list out).
        response = await api.post("/api/v1/stations/CP-LL/local-list", json={"update_type": "Differential"})
        assert response.status_code == 200, response.text
        assert response.json()["payload"] == {"versionNumber": 2, "updateType": "Differential"}
        await _command(api, "CP-LL", "GetLocalListVersion", {})
        local_list = (await _operations(api, "CP-LL"))["local_list"]
        assert (local_list["sent_version"], local_list["update_type"], local_list["reported_version"]) == (
            2,
            "Differential",
            5,
        )


async def test_the_server_fills_request_ids_and_remote_start_ids(csms: Running) -> None:
    await csms.put_station("CP-IDS")
    async with v201(csms, "CP-IDS") as cp, csms.api() as api:
        filled: dict[str, int] = {}
        for action in ("GetBaseReport", "GetReport", "GetChargingProfiles", "CustomerInformation", "GetLog"):
            body = {k: v for k, v in REQUESTS[action].items() if k != "requestId"}
            record = await _command(api, "CP-IDS", action, body)
            filled[action] = record["payload"]["requestId"]
            assert (action, {**body, "requestId": filled[action]}) in cp.received_calls
        assert len(set(filled.values())) == len(filled) and min(filled.values()) >= SERVER_IDS_FROM
        given = await _command(api, "CP-IDS", "GetBaseReport", REQUESTS["GetBaseReport"])
        assert given["payload"]["requestId"] == REQUESTS["GetBaseReport"]["requestId"]  # the operator's stays

        start = await _command(api, "CP-IDS", "RequestStartTransaction", {"idToken": TOKEN, "evseId": 1})
        remote_start_id = start["payload"]["remoteStartId"]
        assert remote_start_id >= SERVER_IDS_FROM and remote_start_id not in filled.values()
        [shown] = (await _operations(api, "CP-IDS"))["remote_starts"]
        assert (shown["remote_start_id"], shown["command_id"], shown["status"]) == (
            remote_start_id,
            start["id"],
            "Accepted",
        )


async def test_a_template_is_sent_to_a_v201_station_as_its_charging_profile(csms: Running) -> None:
    relative = {
        "stackLevel": 0,
        "chargingProfilePurpose": "ChargePointMaxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 32.0}]},
    }
    daily = {
        **relative,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Recurring",
        "recurrencyKind": "Daily",
    }
    await csms.put_station("CP-TPL")
    async with v201(csms, "CP-TPL") as cp, csms.api() as api:
        template = (await api.put("/api/v1/charging-profiles/site-32A", json=relative)).json()
        assert (await api.put("/api/v1/charging-profiles/daily", json=daily)).status_code == 201
        url = "/api/v1/stations/CP-TPL/commands/SetChargingProfile"

        sent = await api.post(url, json={"evseId": 0, "template": "site-32A"})
        assert sent.status_code == 200, sent.text
        expected = {
            "id": template["profile"]["chargingProfileId"],
            "stackLevel": 0,
            "chargingProfilePurpose": "ChargingStationMaxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": [{"id": 1, **relative["chargingSchedule"]}],
        }
        assert sent.json()["payload"] == {"evseId": 0, "chargingProfile": expected}
        assert ("SetChargingProfile", {"evseId": 0, "chargingProfile": expected}) in cp.received_calls
        [stored] = (await _operations(api, "CP-TPL"))["charging_profiles"]
        assert (stored["purpose"], stored["evse_id"], stored["protocol"]) == (
            "ChargingStationMaxProfile",
            0,
            "ocpp2.0.1",
        )

        # A Recurring 1.6 profile without startSchedule has no 2.0.1 form: the 422 says why.
        refused = await api.post(url, json={"evseId": 1, "template": "daily"})
        assert refused.status_code == 422 and "K01.FR.40" in refused.json()["error"]["message"], refused.text
        # The body is 2.0.1's: a connectorId is not a field there.
        refused = await api.post(url, json={"connectorId": 1, "template": "site-32A"})
        assert refused.status_code == 422 and "evseId" in refused.json()["error"]["message"], refused.text


async def test_1_6_operations_on_record_survive_the_upgrade_as_1_6_rows(db: Database, tmp_path: Path) -> None:
    """Rows written before 2.0.1 operations existed read as 1.6 targets (no EVSE level), and the 1.6 writes
    that follow still replace them."""
    before = tmp_path / "operations"
    before.mkdir()
    for migration in sorted(operations.MIGRATIONS.glob("000[1-5]_*.sql")):
        shutil.copy(migration, before)
    await db.migrate([("operations", before)])
    await db.execute(
        "INSERT INTO reservations (station_id, reservation_id, connector_id, id_tag, expiry_date, status)"
        " VALUES ('S', 1, 2, 'T', now(), 'Active');"
        "INSERT INTO charging_profiles (station_id, charging_profile_id, connector_id, stack_level, purpose, kind,"
        " profile) VALUES ('S', 5, 1, 0, 'TxDefaultProfile', 'Relative', '{}');"
        "INSERT INTO connector_availability (station_id, connector_id, availability, answer)"
        " VALUES ('S', 1, 'Inoperative', 'Accepted');"
        "INSERT INTO station_jobs (station_id, kind, location, status) VALUES ('S', 'firmware', 'ftp://x', 'Installed')"
    )
    await db.migrate([("operations", operations.MIGRATIONS)])
    recorder = operations.OperationsRecorder(db)
    change = {
        "id": 9,
        "station_id": "S",
        "protocol": "ocpp1.6",
        "status": "completed",
        "result": {"status": "Accepted"},
    }
    await recorder.command_completed(
        {**change, "action": "ChangeAvailability", "payload": {"connectorId": 1, "type": "Operative"}}
    )

    state = await operations.OperationsViews(db).station_state("S")
    [reservation] = await operations.OperationsViews(db).reservations_with_id(1, "S")
    assert (reservation["protocol"], reservation["evse_id"], reservation["connector_id"]) == ("ocpp1.6", 0, 2)
    [profile] = state["charging_profiles"]
    assert (profile["protocol"], profile["evse_id"], profile["connector_id"]) == ("ocpp1.6", 0, 1)
    [availability] = state["availability"]
    assert (availability["evse_id"], availability["connector_id"], availability["availability"]) == (0, 1, "Operative")
    [job] = state["jobs"]
    assert (job["protocol"], job["request_id"], job["status"]) == ("ocpp1.6", None, "Installed")
