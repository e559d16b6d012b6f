"""OCPP 2.0.1 end to end from an independent raw-wire station: negotiation, every station-to-CSMS message,
retries, 2.0.1 framing, and what the API shows (the same shapes as 1.6, with the version)."""

from __future__ import annotations

from typing import Any

import pytest
from trio_websocket import ConnectionRejected

from devcluster import station201 as v201
from devcluster.station import CallErrorReply, SimulatedStation
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration

TS = "2030-01-01T10:00:00Z"
# One minimal, schema-valid request per reported message: (action, payload, expected answer).
REPORTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("NotifyEvent", {"generatedAt": TS, "seqNo": 0, "eventData": [{
        "eventId": 1, "timestamp": TS, "trigger": "Alerting", "actualValue": "Faulted", "eventNotificationType":
        "HardWiredNotification", "component": {"name": "Connector"}, "variable": {"name": "Problem"}}]}, {}),
    ("NotifyMonitoringReport", {"requestId": 1, "seqNo": 0, "generatedAt": TS}, {}),
    ("SecurityEventNotification", {"type": "FirmwareUpdated", "timestamp": TS}, {}),
    ("FirmwareStatusNotification", {"status": "Installed"}, {}),
    ("LogStatusNotification", {"status": "Uploaded", "requestId": 3}, {}),
    ("PublishFirmwareStatusNotification", {"status": "Published"}, {}),
    ("ReservationStatusUpdate", {"reservationId": 5, "reservationUpdateStatus": "Expired"}, {}),
    ("NotifyChargingLimit", {"chargingLimit": {"chargingLimitSource": "EMS"}}, {}),
    ("ClearedChargingLimit", {"chargingLimitSource": "EMS"}, {}),
    ("NotifyEVChargingNeeds", {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "AC_single_phase"}},
     {"status": "Rejected"}),
    ("NotifyEVChargingSchedule", {"timeBase": TS, "evseId": 1, "chargingSchedule": {
        "id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7000.0}]}},
     {"status": "Accepted"}),
    ("ReportChargingProfiles", {"requestId": 2, "chargingLimitSource": "CSO", "evseId": 1, "chargingProfile": [{
        "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
        "chargingSchedule": [{"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 7000.0}]}]}]}, {}),
    ("NotifyDisplayMessages", {"requestId": 4}, {}),
    ("NotifyCustomerInformation", {"data": "none", "seqNo": 0, "generatedAt": TS, "requestId": 6}, {}),
]  # fmt: skip


async def test_negotiation_prefers_201_shows_the_protocol_and_a_station_may_switch(csms: Running) -> None:
    await csms.put_station("CP-NEG")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-NEG", subprotocols=["ocpp1.6", "ocpp2.0.1"]) as cp:
        assert cp.ws.subprotocol == "ocpp2.0.1"  # server preference: the newest both speak
        assert (await cp.call("BootNotification", v201.boot()))["status"] == "Accepted"
    async with csms.api() as api:
        assert (await api.get("/api/v1/stations/CP-NEG")).json()["protocol"] == "ocpp2.0.1"
    async with SimulatedStation.connect(csms.ocpp_url, "CP-NEG", subprotocols=["ocpp1.6"]) as cp:
        assert cp.ws.subprotocol == "ocpp1.6"
        assert (await cp.boot())["status"] == "Accepted"
    async with csms.api() as api:
        assert (await api.get("/api/v1/stations/CP-NEG")).json()["protocol"] == "ocpp1.6"


@pytest.mark.parametrize("replica_overrides", [{"CSMS_OCPP_VERSIONS": "ocpp1.6"}])
async def test_a_version_left_out_of_ocpp_versions_is_refused_at_the_handshake(csms: Running) -> None:
    await csms.put_station("CP-ONLY16")
    with pytest.raises(ConnectionRejected) as refused:
        async with SimulatedStation.connect(csms.ocpp_url, "CP-ONLY16", subprotocols=v201.SUBPROTOCOL_201):
            pass
    assert refused.value.status_code == 400
    async with SimulatedStation.connect(csms.ocpp_url, "CP-ONLY16", subprotocols=["ocpp2.0.1", "ocpp1.6"]) as cp:
        assert cp.ws.subprotocol == "ocpp1.6"


async def test_a_201_charging_session_is_durable_idempotent_and_listed_like_16(csms: Running) -> None:
    await csms.put_station("CP-201")
    await csms.put_id_tag("TOKEN-201", parent_id_tag="GROUP-1")
    await csms.put_id_tag("TYPED-TOKEN", type="eMAID")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-201", subprotocols=v201.SUBPROTOCOL_201) as cp,
        csms.api() as api,
    ):
        boot = await cp.call("BootNotification", v201.boot(serialNumber="SN-2", firmwareVersion="2.0"))
        assert boot["status"] == "Accepted" and boot["interval"] == 300 and boot["currentTime"].endswith("Z")
        assert "currentTime" in await cp.call("Heartbeat", {})
        for evse in (1, 2):
            assert await cp.call("StatusNotification", v201.status(evse, 1, "Available")) == {}
        with pytest.raises(CallErrorReply) as bad:
            await cp.call("StatusNotification", v201.status(0, 1, "Available"))
        assert bad.value.code == "PropertyConstraintViolation"

        token = {"idToken": "TOKEN-201", "type": "ISO14443"}
        assert (await cp.call("Authorize", {"idToken": token}))["idTokenInfo"] == {
            "status": "Accepted", "groupIdToken": {"idToken": "GROUP-1", "type": "Central"}}  # fmt: skip
        unknown = await cp.call("Authorize", {"idToken": {"idToken": "NOBODY", "type": "ISO14443"}})
        assert unknown["idTokenInfo"]["status"] == "Unknown"
        wrong_type = await cp.call("Authorize", {"idToken": {"idToken": "TYPED-TOKEN", "type": "ISO14443"}})
        assert wrong_type["idTokenInfo"]["status"] == "Invalid"
        assert (await cp.call("Authorize", {"idToken": {"idToken": "", "type": "NoAuthorization"}}))[
            "idTokenInfo"]["status"] == "Accepted"  # fmt: skip
        with_cert = await cp.call("Authorize", {"idToken": token, "certificate": "MIIB..."})
        assert with_cert["certificateStatus"] == "CertChainError"  # no CA configured: not vouched for

        started = v201.transaction_event(
            "Started", "TX-A", 0, wh=1000, id_token="TOKEN-201", evse_id=1, connector_id=1, charging_state="Charging"
        )
        assert (await cp.call("TransactionEvent", started))["idTokenInfo"]["status"] == "Accepted"
        assert (await cp.call("TransactionEvent", started))["idTokenInfo"]["status"] == "Accepted"  # a retry
        await cp.call("TransactionEvent", v201.transaction_event("Updated", "TX-A", 1, wh=1800.5))
        listed = (await api.get("/api/v1/transactions", params={"station_id": "CP-201", "active": "true"})).json()
        (tx,) = listed["items"]
        assert tx["energy_so_far_wh"] == 801 and tx["active"] and tx["protocol"] == "ocpp2.0.1"
        ended = v201.transaction_event(
            "Ended", "TX-A", 2, wh=3500, id_token="TOKEN-201", stopped_reason="EVDisconnected"
        )
        await cp.call("TransactionEvent", ended)
        await cp.call("TransactionEvent", ended)  # a retry changes nothing
        await cp.call("MeterValues", {"evseId": 0, "meterValue": [v201.energy(123456)]})

        tx = (await api.get(f"/api/v1/transactions/{tx['id']}")).json()
        assert {k: tx[k] for k in ("station_tx_id", "evse_id", "connector_id", "id_tag", "id_token_type")} == {
            "station_tx_id": "TX-A", "evse_id": 1, "connector_id": 1, "id_tag": "TOKEN-201",
            "id_token_type": "ISO14443"}  # fmt: skip
        assert (tx["meter_start"], tx["meter_stop"], tx["energy_wh"], tx["active"]) == (1000, 3500, 2500, False)
        assert (tx["stop_reason"], tx["charging_state"], tx["event_count"], tx["flags"]) == (
            "EVDisconnected", "Charging", 3, [])  # fmt: skip
        assert [e["seq_no"] for e in tx["events"]] == [0, 1, 2]
        assert len(tx["meter_values"]) == 3  # retried events stored no sample twice

        station = (await api.get("/api/v1/stations/CP-201")).json()
        assert station["protocol"] == "ocpp2.0.1" and station["serial_number"] == "SN-2"
        assert station["last_boot_reason"] == "PowerUp"
        assert [(c["evse_id"], c["connector_id"], c["status"]) for c in station["connectors"]] == [
            (1, 1, "Available"), (2, 1, "Available")]  # fmt: skip


async def test_every_reported_message_is_answered_kept_once_and_listed(csms: Running) -> None:
    await csms.put_station("CP-REPORTS")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-REPORTS", subprotocols=v201.SUBPROTOCOL_201) as cp,
        csms.api() as api,
    ):
        await cp.call("BootNotification", v201.boot())
        for action, payload, answer in REPORTS:
            assert await cp.call(action, payload) == answer, action
            assert await cp.call(action, payload) == answer, action  # the station's retry
        assert await cp.call("NotifyReport", {"requestId": 1, "generatedAt": TS, "seqNo": 0}) == {}
        assert await cp.call("DataTransfer", {"vendorId": "com.example", "data": {"any": ["json"]}}) == {
            "status": "UnknownVendorId"
        }
        sign = await cp.call("SignCertificate", {"csr": "-----BEGIN CERTIFICATE REQUEST-----"})
        assert sign["status"] == "Rejected" and sign["statusInfo"]["reasonCode"] == "InvalidCSR"  # issue 11: a CA
        ev_cert = await cp.call(
            "Get15118EVCertificate", {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install",
                                      "exiRequest": "AAAA"})  # fmt: skip
        assert ev_cert["status"] == "Failed"
        ocsp = {"hashAlgorithm": "SHA256", "issuerNameHash": "a", "issuerKeyHash": "b", "serialNumber": "c",
                "responderURL": "http://ocsp.example"}  # fmt: skip
        assert (await cp.call("GetCertificateStatus", {"ocspRequestData": ocsp}))["status"] == "Failed"

        events = (await api.get("/api/v1/stations/CP-REPORTS/events", params={"limit": 100})).json()["items"]
        kept = sorted(e["action"] for e in events)
        assert kept == sorted([a for a, _, _ in REPORTS] + ["SignCertificate", "Get15118EVCertificate"])
        firmware = await api.get("/api/v1/stations/CP-REPORTS/events", params={"action": "FirmwareStatusNotification"})
        assert [(e["summary"], e["payload"]) for e in firmware.json()["items"]] == [
            ("Installed", {"status": "Installed"})
        ]
        assert (await api.get("/api/v1/stations/CP-REPORTS/events", params={"action": "no such"})).status_code == 400


async def test_201_framing_errors_use_201_codes(csms: Running) -> None:
    await csms.put_station("CP-FRAMES")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-FRAMES", subprotocols=v201.SUBPROTOCOL_201) as cp:
        await cp.send_raw("not json")
        assert (await cp.receive_raw())[:3] == [4, "-1", "RpcFrameworkError"]
        await cp.send_raw('[2, "m1", "Heartbeat", []]')
        assert (await cp.receive_raw())[:3] == [4, "m1", "FormatViolation"]
        await cp.send_raw('[7, "m2"]')
        assert (await cp.receive_raw())[:3] == [4, "m2", "MessageTypeNotSupported"]
        with pytest.raises(CallErrorReply) as missing:
            await cp.call("BootNotification", {"reason": "PowerUp"})
        assert missing.value.code == "OccurrenceConstraintViolation"
        with pytest.raises(CallErrorReply) as wrong_way:
            await cp.call("RequestStartTransaction", {"idToken": {"idToken": "x", "type": "Local"}, "remoteStartId": 1})
        assert wrong_way.value.code == "NotSupported"
