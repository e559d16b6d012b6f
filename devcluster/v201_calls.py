"""OCPP 2.0.1 for the simulated station (devcluster.station with subprotocols=["ocpp2.0.1"]): a valid request
for every CSMS-initiated operation, spec-shaped answers to them, and a station with a small device model that
answers GetVariables / SetVariables and sends its NotifyReport in parts.

Written from the 2.0.1 specification, not from the server's code, so tests drive the server from outside.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from devcluster.station import StationCallError, now_iso

Payload = dict[str, Any]

SOON = "2099-01-01T00:00:00Z"
TOKEN = {"idToken": "TAG-201", "type": "ISO14443"}
PROFILE = {
    "id": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Relative",
    "chargingSchedule": [
        {"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0}]}
    ],
}
HASH = {"hashAlgorithm": "SHA256", "issuerNameHash": "aa", "issuerKeyHash": "bb", "serialNumber": "01"}
HEARTBEAT = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}

# A schema-valid request for each of the 40 CSMS-initiated OCPP 2.0.1 operations.
REQUESTS: dict[str, Payload] = {
    "GetVariables": {"getVariableData": [HEARTBEAT]},
    "SetVariables": {"setVariableData": [{**HEARTBEAT, "attributeValue": "120"}]},
    "GetBaseReport": {"requestId": 1, "reportBase": "FullInventory"},
    "GetReport": {"requestId": 2, "componentCriteria": ["Available"]},
    "RequestStartTransaction": {"remoteStartId": 11, "idToken": TOKEN, "evseId": 1},
    "RequestStopTransaction": {"transactionId": "tx-1"},
    "GetTransactionStatus": {"transactionId": "tx-1"},
    "Reset": {"type": "OnIdle"},
    "UnlockConnector": {"evseId": 1, "connectorId": 1},
    "ChangeAvailability": {"operationalStatus": "Inoperative", "evse": {"id": 1}},
    "TriggerMessage": {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}},
    "SetChargingProfile": {"evseId": 1, "chargingProfile": PROFILE},
    "GetChargingProfiles": {"requestId": 3, "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}},
    "ClearChargingProfile": {"chargingProfileId": 1},
    "GetCompositeSchedule": {"duration": 600, "evseId": 1},
    "ReserveNow": {"id": 7, "expiryDateTime": SOON, "idToken": TOKEN, "evseId": 1},
    "CancelReservation": {"reservationId": 7},
    "SendLocalList": {"versionNumber": 3, "updateType": "Full", "localAuthorizationList": [{"idToken": TOKEN}]},
    "GetLocalListVersion": {},
    "ClearCache": {},
    "UpdateFirmware": {"requestId": 4, "firmware": {"location": "https://fw.example/2.bin", "retrieveDateTime": SOON}},
    "PublishFirmware": {"location": "https://fw.example/2.bin", "checksum": "0" * 32, "requestId": 5},
    "UnpublishFirmware": {"checksum": "0" * 32},
    "GetLog": {"logType": "DiagnosticsLog", "requestId": 6, "log": {"remoteLocation": "ftp://logs.example/"}},
    "SetDisplayMessage": {
        "message": {"id": 1, "priority": "NormalCycle", "message": {"format": "UTF8", "content": "Welcome"}}
    },
    "GetDisplayMessages": {"requestId": 7},
    "ClearDisplayMessage": {"id": 1},
    "CustomerInformation": {"requestId": 8, "report": True, "clear": False, "customerIdentifier": "C-1"},
    "SetNetworkProfile": {
        "configurationSlot": 1,
        "connectionData": {
            "ocppVersion": "OCPP20",
            "ocppTransport": "JSON",
            "ocppCsmsUrl": "wss://csms.example/ocpp",
            "messageTimeout": 30,
            "securityProfile": 2,
            "ocppInterface": "Wired0",
        },
    },
    "SetVariableMonitoring": {"setMonitoringData": [{"value": 10.0, "type": "Delta", "severity": 5, **HEARTBEAT}]},
    "SetMonitoringBase": {"monitoringBase": "All"},
    "SetMonitoringLevel": {"severity": 5},
    "GetMonitoringReport": {"requestId": 9},
    "ClearVariableMonitoring": {"id": [1]},
    "CostUpdated": {"totalCost": 4.2, "transactionId": "tx-1"},
    "CertificateSigned": {"certificateChain": "-----BEGIN CERTIFICATE-----"},
    "InstallCertificate": {"certificateType": "CSMSRootCertificate", "certificate": "-----BEGIN CERTIFICATE-----"},
    "DeleteCertificate": {"certificateHashData": HASH},
    "GetInstalledCertificateIds": {},
    "DataTransfer": {"vendorId": "com.example", "messageId": "hello", "data": "{}"},
}

_STATUS = {
    "UnlockConnector": "Unlocked",
    "GetChargingProfiles": "NoProfiles",
    "GetLocalListVersion": None,
    "GetInstalledCertificateIds": "NotFound",
    "GetDisplayMessages": "Unknown",
    "GetMonitoringReport": "EmptyResultSet",
    "UnpublishFirmware": "Unpublished",
}


async def answer_v201(action: str, payload: Payload) -> Payload:
    """What a cooperative 2.0.1 station answers (its device model left aside: see DeviceModelStation)."""
    if action == "GetLocalListVersion":
        return {"versionNumber": 0}
    if action == "GetTransactionStatus":
        return {"messagesInQueue": False, "ongoingIndicator": True}
    if action == "CostUpdated":
        return {}
    if action == "GetVariables":
        return {"getVariableResult": [_unknown(d) for d in payload["getVariableData"]]}
    if action == "SetVariables":
        return {"setVariableResult": [_unknown(d) for d in payload["setVariableData"]]}
    if action == "SetVariableMonitoring":
        return {
            "setMonitoringResult": [
                {**_identity(d), "status": "Accepted", "type": d["type"], "severity": d["severity"], "id": 1}
                for d in payload["setMonitoringData"]
            ]
        }
    if action == "ClearVariableMonitoring":
        return {"clearMonitoringResult": [{"status": "Accepted", "id": i} for i in payload["id"]]}
    if action in REQUESTS:
        return {"status": _STATUS.get(action, "Accepted")}
    raise StationCallError("NotImplemented", f"simulator does not know {action}")


def _identity(data: Payload) -> Payload:
    return {"component": data["component"], "variable": data["variable"]}


def _unknown(data: Payload) -> Payload:
    return {**_identity(data), "attributeStatus": "UnknownComponent"}


@dataclass
class Variable:
    component: Payload
    variable: Payload
    value: str
    mutability: str = "ReadWrite"
    unit: str | None = None
    data_type: str = "integer"
    reboot_required: bool = False

    def matches(self, data: Payload) -> bool:
        return data["component"] == self.component and data["variable"] == self.variable

    def report(self) -> Payload:
        characteristics: Payload = {"dataType": self.data_type, "supportsMonitoring": True}
        if self.unit is not None:
            characteristics["unit"] = self.unit
        attributes: list[Payload] = [{"type": "Actual", "value": self.value, "mutability": self.mutability}]
        if self.data_type == "integer":
            attributes.append({"type": "MaxSet", "value": "3600", "mutability": "ReadOnly", "constant": True})
        return {
            "component": self.component,
            "variable": self.variable,
            "variableAttribute": attributes,
            "variableCharacteristics": characteristics,
        }


def sample_variables() -> list[Variable]:
    return [
        Variable({"name": "OCPPCommCtrlr"}, {"name": "HeartbeatInterval"}, "300", unit="s"),
        Variable({"name": "OCPPCommCtrlr"}, {"name": "NetworkProfileConnectionAttempts"}, "3"),
        Variable({"name": "SampledDataCtrlr"}, {"name": "TxUpdatedInterval"}, "1", reboot_required=True),
        Variable({"name": "EVSE", "evse": {"id": 1}}, {"name": "Power", "instance": "Max"}, "22000", "ReadOnly", "W"),
        Variable(
            {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
            {"name": "ConnectorType"},
            "cType2",
            "ReadOnly",
            data_type="string",
        ),
        Variable({"name": "DeviceDataCtrlr"}, {"name": "ItemsPerMessage", "instance": "GetReport"}, "2", "ReadOnly"),
    ]


@dataclass
class DeviceModelStation:
    """Answers like a 2.0.1 station with a device model; `parts` are the NotifyReports to send after an
    accepted GetBaseReport (the caller sends them: the station initiates those calls)."""

    variables: list[Variable] = field(default_factory=sample_variables)
    reports: list[Payload] = field(default_factory=list)  # accepted report requests, in order

    async def answer(self, action: str, payload: Payload) -> Payload:
        if action == "GetVariables":
            return {"getVariableResult": [self._get(d) for d in payload["getVariableData"]]}
        if action == "SetVariables":
            return {"setVariableResult": [self._set(d) for d in payload["setVariableData"]]}
        if action in ("GetBaseReport", "GetReport"):
            self.reports.append(payload)
            return {"status": "Accepted"}
        return await answer_v201(action, payload)

    def _find(self, data: Payload) -> Variable | None:
        return next((v for v in self.variables if v.matches(data)), None)

    def _get(self, data: Payload) -> Payload:
        found = self._find(data)
        if found is None:
            return _unknown(data)
        return {**_identity(data), "attributeStatus": "Accepted", "attributeValue": found.value}

    def _set(self, data: Payload) -> Payload:
        found = self._find(data)
        if found is None:
            return _unknown(data)
        if found.mutability == "ReadOnly":
            return {**_identity(data), "attributeStatus": "Rejected"}
        found.value = data["attributeValue"]
        return {**_identity(data), "attributeStatus": "RebootRequired" if found.reboot_required else "Accepted"}

    def parts(self, request_id: int, per_part: int = 2) -> Iterator[Payload]:
        """The NotifyReport requests of a full report, `per_part` variables each (seqNo from 0, tbc on all
        but the last)."""
        chunks = [self.variables[i : i + per_part] for i in range(0, len(self.variables), per_part)]
        for seq_no, chunk in enumerate(chunks):
            yield {
                "requestId": request_id,
                "generatedAt": now_iso(),
                "seqNo": seq_no,
                "tbc": seq_no < len(chunks) - 1,
                "reportData": [v.report() for v in chunk],
            }
