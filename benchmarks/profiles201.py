"""The same profiles spoken in OCPP 2.0.1: each 1.6-shaped step of `profiles` becomes what 2.0.1 firmware sends.

The schedule (`Profile`) is shared, so both versions send the same number of calls for the same session:
StartTransaction -> TransactionEvent Started (idToken, EVSE, Transaction.Begin register reading),
StatusNotification Charging -> TransactionEvent Updated (ChargingStateChanged: Charging), MeterValues during a
session -> TransactionEvent Updated (MeterValuePeriodic, energy register + power, the same two samples as 1.6),
StatusNotification Finishing -> TransactionEvent Updated (ChargingStateChanged: EVConnected), StopTransaction ->
TransactionEvent Ended (StopAuthorized, Transaction.End reading), and every other status -> StatusNotification
Available / Occupied per EVSE (one connector each). The station makes its own transactionId and seqNo.
"""

from __future__ import annotations

import time

from benchmarks.profiles import WH_PER_SAMPLE, Payload, StationState, Step, now_iso

TOKEN_TYPE = "ISO14443"


def _reading(wh: int, stamp: str, context: str) -> list[Payload]:
    return [
        {
            "timestamp": stamp,
            "sampledValue": [
                {"value": wh, "context": context, "measurand": "Energy.Active.Import.Register"},
                {"value": 7200, "context": context, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
            ],
        }
    ]


def _event(state: StationState, evse: int, event_type: str, trigger: str, **info: str) -> Payload:
    tx = state.tx[evse]
    assert isinstance(tx, str)
    state.tx_seq[evse] += 1
    return {
        "eventType": event_type,
        "timestamp": now_iso(),
        "triggerReason": trigger,
        "seqNo": state.tx_seq[evse],
        "transactionInfo": {"transactionId": tx, **info},
    }


def build_payload(state: StationState, step: Step, id_tag: str) -> Payload | None:
    """The 2.0.1 request for `step` (its action may differ: see `action_of`), or None when it makes no sense now."""
    action, evse, status = step
    tx = state.tx[evse] if evse else None
    if action == "Heartbeat":
        return {}
    if action == "BootNotification":
        return {"reason": "PowerUp", "chargingStation": {"vendorName": "BenchSim", "model": "Lite-2"}}
    if action == "Authorize":
        return {"idToken": {"idToken": id_tag, "type": TOKEN_TYPE}}
    if action == "StartTransaction":
        state.meter_wh[evse] += 1
        state.tx[evse] = f"{state.station_id}-{evse}-{time.time_ns():x}"
        state.tx_seq[evse] = -1
        p = _event(state, evse, "Started", "Authorized", chargingState="EVConnected")
        p["idToken"] = {"idToken": id_tag, "type": TOKEN_TYPE}
        p["evse"] = {"id": evse, "connectorId": 1}
        p["meterValue"] = _reading(state.meter_wh[evse], p["timestamp"], "Transaction.Begin")
        return p
    if action == "StopTransaction":
        if tx is None:
            return None
        p = _event(state, evse, "Ended", "StopAuthorized", chargingState="EVConnected", stoppedReason="Local")
        p["idToken"] = {"idToken": id_tag, "type": TOKEN_TYPE}
        p["meterValue"] = _reading(state.meter_wh[evse], p["timestamp"], "Transaction.End")
        state.tx[evse] = None
        return p
    if action == "MeterValues":
        state.meter_wh[evse] += WH_PER_SAMPLE
        if tx is None:
            return {"evseId": evse, "meterValue": _reading(state.meter_wh[evse], now_iso(), "Sample.Periodic")}
        p = _event(state, evse, "Updated", "MeterValuePeriodic")
        p["meterValue"] = _reading(state.meter_wh[evse], p["timestamp"], "Sample.Periodic")
        return p
    if action == "StatusNotification":
        state.status[evse] = status
        if tx is not None and status in ("Charging", "Finishing"):
            charging = "Charging" if status == "Charging" else "EVConnected"
            return _event(state, evse, "Updated", "ChargingStateChanged", chargingState=charging)
        return {
            "timestamp": now_iso(),
            "connectorStatus": "Available" if status == "Available" else "Occupied",
            "evseId": evse,
            "connectorId": 1,
        }
    raise ValueError(f"no payload for {action}")


def action_of(step: Step, payload: Payload) -> str:
    """The 2.0.1 action that carries `payload` (a transaction's steps all travel as TransactionEvent)."""
    if "eventType" in payload:
        return "TransactionEvent"
    return step[0]


def answer_csms_call(state: StationState, action: str, payload: Payload) -> Payload:
    """Accept what the CSMS asks; a TriggerMessage queues the message asked for (2.0.1 names an EVSE)."""
    if action == "TriggerMessage":
        requested = payload.get("requestedMessage")
        evse = payload.get("evse", {}).get("id")
        if requested == "StatusNotification":
            targets = [evse] if isinstance(evse, int) and evse > 0 else range(1, state.connectors + 1)
            for e in targets:
                if e <= state.connectors and len(state.queue) < 16:
                    state.queue.append(("StatusNotification", e, state.status[e]))
        elif requested in ("Heartbeat", "BootNotification") and len(state.queue) < 16:
            state.queue.append((requested, 0, ""))
        return {"status": "Accepted"}
    if action == "GetVariables":
        return {"getVariableResult": []}
    return {"status": "Accepted"}
