"""Which operations a CSMS may send, per negotiated protocol, and which of them are safe to send twice.

A protocol is named as the WebSocket subprotocol it was negotiated with ("ocpp1.6", "ocpp2.0.1"); its
catalogue is exactly the CSMS-to-station actions of the `ocpp` package's schemas for that version, so what
the API accepts is what the station's RPC session will send. Adding a version (2.1) is a line here.
"""

from __future__ import annotations

from csms.ocpp import Validator

# Oldest first: a payload for a station whose version is not known yet is checked against these in order.
PROTOCOLS = ("ocpp1.6", "ocpp2.0.1")

# A second delivery leaves the station as the first did (routing resends these once after a move).
IDEMPOTENT_ACTIONS: dict[str, frozenset[str]] = {
    "ocpp1.6": frozenset(
        {
            "ChangeAvailability",
            "ChangeConfiguration",
            "ClearCache",
            "GetConfiguration",
            "GetLocalListVersion",
            "GetCompositeSchedule",
            "TriggerMessage",
            "UnlockConnector",
            "CancelReservation",
            "ClearChargingProfile",
            "SetChargingProfile",
        }
    ),
    # Not here: anything that starts something (a report with a requestId, a transaction, an upload, a
    # reset) or whose second copy the station would treat as new (SendLocalList versions, monitors without id).
    "ocpp2.0.1": frozenset(
        {
            "CancelReservation",
            "ChangeAvailability",
            "ClearCache",
            "ClearChargingProfile",
            "ClearDisplayMessage",
            "ClearVariableMonitoring",
            "CostUpdated",
            "DeleteCertificate",
            "GetCompositeSchedule",
            "GetInstalledCertificateIds",
            "GetLocalListVersion",
            "GetTransactionStatus",
            "GetVariables",
            "InstallCertificate",
            "SetChargingProfile",
            "SetMonitoringBase",
            "SetMonitoringLevel",
            "SetNetworkProfile",
            "SetVariables",
            "TriggerMessage",
            "UnlockConnector",
            "UnpublishFirmware",
        }
    ),
}


def version_of(protocol: str) -> str:
    """'ocpp2.0.1' -> '2.0.1' (the schema set's name)."""
    return protocol.removeprefix("ocpp")


def validator_for(protocol: str) -> Validator:
    return Validator.for_version(version_of(protocol))


def actions(protocol: str) -> frozenset[str]:
    """The actions a CSMS sends to a station that speaks `protocol`."""
    return validator_for(protocol).csms_actions


def catalogue() -> dict[str, list[str]]:
    """Every protocol's actions, sorted (for error details and the OpenAPI document)."""
    return {protocol: sorted(actions(protocol)) for protocol in PROTOCOLS}
