"""Checks the OCPP 1.6 schemas cannot express, run before a command is sent (the API answers 422).

OCPP 2.0.1 has its own rules in `validation_v201.py`; `checks.check_operation` picks by protocol.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

INT32_MAX = 2**31 - 1


class InvalidOperation(ValueError):
    """The payload is schema-valid but makes no sense; the message names the field."""


def _fits_column(payload: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    """Ids the operations tables record as integer: a larger one would be sent but could not be recorded."""
    for key in keys:
        if key in payload and not -INT32_MAX - 1 <= payload[key] <= INT32_MAX:
            raise InvalidOperation(f"{where}{key} must be a 32-bit integer (at most {INT32_MAX})")


def _aware(raw: str) -> datetime:
    """Stations' timestamps may lack an offset (taken as UTC); naive and aware ones cannot be compared."""
    value = datetime.fromisoformat(raw)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _check_schedule(schedule: dict[str, Any], where: str) -> None:
    periods = schedule.get("chargingSchedulePeriod", [])
    if not periods:
        raise InvalidOperation(f"{where}.chargingSchedulePeriod must have at least one period")
    if periods[0]["startPeriod"] != 0:
        raise InvalidOperation(f"{where}.chargingSchedulePeriod[0].startPeriod must be 0")
    for i, (prev, cur) in enumerate(itertools.pairwise(periods), start=1):
        if cur["startPeriod"] <= prev["startPeriod"]:
            raise InvalidOperation(f"{where}.chargingSchedulePeriod[{i}].startPeriod must increase")
    for i, period in enumerate(periods):
        if period["limit"] < 0:
            raise InvalidOperation(f"{where}.chargingSchedulePeriod[{i}].limit must not be negative")
        if "numberPhases" in period and period["numberPhases"] not in (1, 2, 3):
            raise InvalidOperation(f"{where}.chargingSchedulePeriod[{i}].numberPhases must be 1, 2 or 3")
    if "duration" in schedule and schedule["duration"] <= 0:
        raise InvalidOperation(f"{where}.duration must be positive")
    if "minChargingRate" in schedule and schedule["minChargingRate"] < 0:
        raise InvalidOperation(f"{where}.minChargingRate must not be negative")


def check_charging_profile(connector_id: int, profile: dict[str, Any]) -> None:
    """Stack levels, purposes per connector, recurrence and period ordering (OCPP 1.6 section 3.13)."""
    where = "csChargingProfiles"
    purpose, kind = profile["chargingProfilePurpose"], profile["chargingProfileKind"]
    _fits_column(profile, ("chargingProfileId", "stackLevel", "transactionId"), f"{where}.")
    if profile["stackLevel"] < 0:
        raise InvalidOperation(f"{where}.stackLevel must not be negative")
    if profile["chargingProfileId"] < 0:
        raise InvalidOperation(f"{where}.chargingProfileId must not be negative")
    if purpose == "ChargePointMaxProfile" and connector_id != 0:
        raise InvalidOperation("a ChargePointMaxProfile applies to the whole station: connectorId must be 0")
    if purpose == "TxProfile" and connector_id == 0:
        raise InvalidOperation("a TxProfile applies to a running transaction: connectorId must be > 0")
    if "transactionId" in profile and purpose != "TxProfile":
        raise InvalidOperation(f"{where}.transactionId is only allowed on a TxProfile")
    if kind == "Recurring" and "recurrencyKind" not in profile:
        raise InvalidOperation(f"{where}.recurrencyKind is required for a Recurring profile")
    if kind != "Recurring" and "recurrencyKind" in profile:
        raise InvalidOperation(f"{where}.recurrencyKind is only allowed on a Recurring profile")
    schedule = profile["chargingSchedule"]
    if kind == "Relative" and "startSchedule" in schedule:
        raise InvalidOperation(f"{where}.chargingSchedule.startSchedule is not allowed on a Relative profile")
    if "validFrom" in profile and "validTo" in profile and _aware(profile["validFrom"]) >= _aware(profile["validTo"]):
        raise InvalidOperation(f"{where}.validFrom must be before validTo")
    _check_schedule(schedule, f"{where}.chargingSchedule")


def check_operation_v16(action: str, payload: dict[str, Any]) -> None:
    if action == "SetChargingProfile":
        if payload["connectorId"] < 0:
            raise InvalidOperation("connectorId must not be negative")
        check_charging_profile(payload["connectorId"], payload["csChargingProfiles"])
    elif action == "RemoteStartTransaction" and "chargingProfile" in payload:
        if payload["chargingProfile"]["chargingProfilePurpose"] != "TxProfile":
            raise InvalidOperation("chargingProfile of a RemoteStartTransaction must be a TxProfile")
        check_charging_profile(payload.get("connectorId", 1), payload["chargingProfile"])
    elif action == "GetCompositeSchedule" and payload["duration"] <= 0:
        raise InvalidOperation("duration must be positive")
    elif action == "ReserveNow":
        if payload["connectorId"] < 0:
            raise InvalidOperation("connectorId must not be negative")
        _fits_column(payload, ("connectorId", "reservationId"), "")
