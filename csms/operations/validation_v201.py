"""Checks the OCPP 2.0.1 schemas cannot express (part 2, use cases K01 and F01), run before a command is sent.

The 2.0.1 counterpart of `validation.py`: a charging profile targets an EVSE (0 = the whole station) and holds
one to three schedules; rule ids from the specification are named where they apply. Integers that would not
fit the tables (remoteStartId, requestId, ids) are the storage domain check's (csms.ocpp.domain), as for 1.6.
"""

from __future__ import annotations

from typing import Any

from csms.operations.validation import InvalidOperation, _aware, _check_schedule

Payload = dict[str, Any]


def _check_evse(payload: Payload, key: str, *, minimum: int) -> None:
    if key in payload and payload[key] < minimum:
        raise InvalidOperation(f"{key} must be at least {minimum}")


def _check_schedules(profile: Payload, where: str) -> None:
    schedules = profile["chargingSchedule"]
    ids = [schedule["id"] for schedule in schedules]
    if len(set(ids)) != len(ids):
        raise InvalidOperation(f"{where}.chargingSchedule ids must be unique within the profile")
    for i, schedule in enumerate(schedules):
        at = f"{where}.chargingSchedule[{i}]"
        # K01.FR.40 / K01.FR.41: an Absolute or Recurring profile says when it starts; a Relative one must not.
        if profile["chargingProfileKind"] == "Relative" and "startSchedule" in schedule:
            raise InvalidOperation(f"{at}.startSchedule is not allowed on a Relative profile")
        if profile["chargingProfileKind"] != "Relative" and "startSchedule" not in schedule:
            raise InvalidOperation(f"{at}.startSchedule is required on an Absolute or Recurring profile")
        _check_schedule(schedule, at)
        for j, period in enumerate(schedule["chargingSchedulePeriod"]):
            if "phaseToUse" in period and (period.get("numberPhases") != 1 or period["phaseToUse"] not in (1, 2, 3)):
                raise InvalidOperation(
                    f"{at}.chargingSchedulePeriod[{j}].phaseToUse must be 1, 2 or 3, and only with numberPhases 1"
                )


def check_charging_profile(evse_id: int, profile: Payload, where: str) -> None:
    """Purposes per EVSE, transaction ids, recurrence, schedules and their periods."""
    purpose = profile["chargingProfilePurpose"]
    if profile["stackLevel"] < 0:
        raise InvalidOperation(f"{where}.stackLevel must not be negative")
    if profile["id"] < 0:
        raise InvalidOperation(f"{where}.id must not be negative")
    if purpose == "ChargingStationExternalConstraints":  # K01.FR.22: only a station reports these
        raise InvalidOperation(f"{where}.chargingProfilePurpose ChargingStationExternalConstraints is not for a CSMS")
    if purpose == "ChargingStationMaxProfile" and evse_id != 0:
        raise InvalidOperation("a ChargingStationMaxProfile applies to the whole station: evseId must be 0")
    if purpose == "TxProfile" and evse_id == 0:  # K01.FR.16
        raise InvalidOperation("a TxProfile applies to a running transaction: evseId must be > 0")
    if "transactionId" in profile and purpose != "TxProfile":
        raise InvalidOperation(f"{where}.transactionId is only allowed on a TxProfile")
    kind = profile["chargingProfileKind"]
    if kind == "Recurring" and "recurrencyKind" not in profile:
        raise InvalidOperation(f"{where}.recurrencyKind is required for a Recurring profile")
    if kind != "Recurring" and "recurrencyKind" in profile:
        raise InvalidOperation(f"{where}.recurrencyKind is only allowed on a Recurring profile")
    if "validFrom" in profile and "validTo" in profile and _aware(profile["validFrom"]) >= _aware(profile["validTo"]):
        raise InvalidOperation(f"{where}.validFrom must be before validTo")
    _check_schedules(profile, where)


def check_operation_v201(action: str, payload: Payload) -> None:
    if action == "SetChargingProfile":
        _check_evse(payload, "evseId", minimum=0)
        profile = payload["chargingProfile"]
        if profile["chargingProfilePurpose"] == "TxProfile" and "transactionId" not in profile:
            raise InvalidOperation("chargingProfile.transactionId is required on a TxProfile (K01.FR.03)")
        check_charging_profile(payload["evseId"], profile, "chargingProfile")
    elif action == "RequestStartTransaction":
        _check_evse(payload, "evseId", minimum=1)
        if "chargingProfile" in payload:
            profile = payload["chargingProfile"]
            if profile["chargingProfilePurpose"] != "TxProfile":
                raise InvalidOperation("chargingProfile of a RequestStartTransaction must be a TxProfile")
            if "transactionId" in profile:  # the transaction does not exist yet
                raise InvalidOperation("chargingProfile.transactionId is not allowed in a RequestStartTransaction")
            check_charging_profile(payload.get("evseId", 1), profile, "chargingProfile")
    elif action == "GetCompositeSchedule":
        _check_evse(payload, "evseId", minimum=0)
        if payload["duration"] <= 0:
            raise InvalidOperation("duration must be positive")
