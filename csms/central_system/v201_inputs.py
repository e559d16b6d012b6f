"""OCPP 2.0.1 payloads -> the protocol-neutral domain inputs (boot info, readings, transaction events)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from csms.central_system.timestamps import parse
from csms.stations import BootInfo
from csms.transactions import SampledValue, TransactionEventInput

Payload = dict[str, Any]


def boot_info(p: Payload) -> BootInfo:
    station = p["chargingStation"]
    modem = station.get("modem", {})
    return BootInfo(
        vendor=station["vendorName"],
        model=station["model"],
        serial_number=station.get("serialNumber"),
        firmware_version=station.get("firmwareVersion"),
        iccid=modem.get("iccid"),
        imsi=modem.get("imsi"),
        reason=p["reason"],
    )


_PLAIN_EXPONENT = 18  # beyond 10**18 (or below 10**-18) no meter reads: scientific notation keeps the text short


def _number_text(value: float | int, multiplier: int) -> str:
    """The reading as decimal text with the unit's power of ten applied (2.0.1 sends JSON numbers).

    The multiplier is any int4 the schema allows: shifting the exponent in the tuple needs no context (which
    would overflow), and an absurd magnitude stays a short "1.5E+900000" (kept, never counted as energy)."""
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    scaled = Decimal((sign, digits, int(exponent) + multiplier))
    return format(scaled, "f" if abs(scaled.adjusted()) <= _PLAIN_EXPONENT else "E")


def samples(meter_values: list[Payload]) -> list[SampledValue]:
    out = []
    for meter_value in meter_values:
        timestamp = parse(meter_value["timestamp"], "meterValue.timestamp")
        for sv in meter_value["sampledValue"]:
            unit = sv.get("unitOfMeasure", {})
            out.append(
                SampledValue(
                    timestamp=timestamp,
                    value=_number_text(sv["value"], unit.get("multiplier", 0)),
                    measurand=sv.get("measurand", "Energy.Active.Import.Register"),
                    phase=sv.get("phase", ""),
                    unit=unit.get("unit", "Wh"),
                    context=sv.get("context", "Sample.Periodic"),
                    location=sv.get("location", "Outlet"),
                    format="Raw",  # a signedMeterValue travels beside the plain value, which is what we keep
                )
            )
    return out


def transaction_event(p: Payload, received_at: datetime, id_token_status: str | None) -> TransactionEventInput:
    info = p["transactionInfo"]
    evse = p.get("evse", {})
    token = p.get("idToken", {})
    return TransactionEventInput(
        station_tx_id=info["transactionId"],
        seq_no=p["seqNo"],
        event_type=p["eventType"],
        timestamp=parse(p["timestamp"], "timestamp"),
        received_at=received_at,
        trigger_reason=p["triggerReason"],
        offline=p.get("offline", False),
        charging_state=info.get("chargingState"),
        stopped_reason=info.get("stoppedReason"),
        remote_start_id=info.get("remoteStartId"),
        reservation_id=p.get("reservationId"),
        id_token=token.get("idToken"),
        id_token_type=token.get("type"),
        id_token_status=id_token_status,
        evse_id=evse.get("id"),
        connector_id=evse.get("connectorId"),
        samples=samples(p.get("meterValue", [])),
    )
