"""OCPP 2.0.1 payloads for the simulated station (devcluster.station in its 2.0.1 mode).

Plain dicts built to the 2.0.1 schemas, written by hand from the specification (not from our handlers), so tests
and benchmarks drive the CSMS the way 2.0.1 firmware does: connect with ``subprotocols=SUBPROTOCOL_201``.
"""

from __future__ import annotations

from typing import Any

from devcluster.station import now_iso

Payload = dict[str, Any]
SUBPROTOCOL_201 = ["ocpp2.0.1"]


def boot(reason: str = "PowerUp", **station: Any) -> Payload:
    return {"reason": reason, "chargingStation": {"vendorName": "SimCo", "model": "Sim-2", **station}}


def status(evse_id: int, connector_id: int, connector_status: str, timestamp: str | None = None) -> Payload:
    return {
        "timestamp": timestamp or now_iso(),
        "connectorStatus": connector_status,
        "evseId": evse_id,
        "connectorId": connector_id,
    }


def energy(wh: float, timestamp: str | None = None, context: str | None = None) -> Payload:
    """One meterValue with an energy register reading (2.0.1 sends numbers)."""
    sample: Payload = {"value": wh, "measurand": "Energy.Active.Import.Register"}
    if context is not None:
        sample["context"] = context
    return {"timestamp": timestamp or now_iso(), "sampledValue": [sample]}


def transaction_event(
    event_type: str,
    transaction_id: str,
    seq_no: int,
    *,
    trigger_reason: str | None = None,
    timestamp: str | None = None,
    wh: float | None = None,
    id_token: str | None = None,
    token_type: str = "ISO14443",
    evse_id: int | None = None,
    connector_id: int | None = None,
    charging_state: str | None = None,
    stopped_reason: str | None = None,
    remote_start_id: int | None = None,
    offline: bool | None = None,
) -> Payload:
    """A TransactionEvent; an energy reading ``wh`` gets the context its event type implies."""
    stamp = timestamp or now_iso()
    default_trigger = {"Started": "Authorized", "Updated": "MeterValuePeriodic", "Ended": "StopAuthorized"}
    info: Payload = {"transactionId": transaction_id}
    for key, value in (
        ("chargingState", charging_state),
        ("stoppedReason", stopped_reason),
        ("remoteStartId", remote_start_id),
    ):
        if value is not None:
            info[key] = value
    payload: Payload = {
        "eventType": event_type,
        "timestamp": stamp,
        "triggerReason": trigger_reason or default_trigger[event_type],
        "seqNo": seq_no,
        "transactionInfo": info,
    }
    if wh is not None:
        context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(event_type, "Sample.Periodic")
        payload["meterValue"] = [energy(wh, stamp, context)]
    if id_token is not None:
        payload["idToken"] = {"idToken": id_token, "type": token_type}
    if evse_id is not None:
        payload["evse"] = {"id": evse_id, **({"connectorId": connector_id} if connector_id is not None else {})}
    if offline is not None:
        payload["offline"] = offline
    return payload
