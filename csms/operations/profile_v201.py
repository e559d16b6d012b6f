"""A 1.6 charging profile (what templates hold) as a 2.0.1 chargingProfile, or why it cannot be one.

The fields carry over (2.0.1 holds a list of schedules: the one schedule gets id 1); ChargePointMaxProfile is
2.0.1's ChargingStationMaxProfile. What does not carry over: an Absolute or Recurring profile without a
startSchedule (2.0.1 requires one, K01.FR.40).
"""

from __future__ import annotations

from typing import Any

from csms.operations.validation import InvalidOperation

Payload = dict[str, Any]

_PURPOSES = {"ChargePointMaxProfile": "ChargingStationMaxProfile"}
_SHARED = ("stackLevel", "chargingProfileKind", "recurrencyKind", "validFrom", "validTo")


def profile_v201(profile: Payload) -> Payload:
    """`profile` is a template's 1.6 profile (with its chargingProfileId); raises InvalidOperation."""
    schedule = profile["chargingSchedule"]
    if profile["chargingProfileKind"] != "Relative" and "startSchedule" not in schedule:
        raise InvalidOperation(
            f"an {profile['chargingProfileKind']} template without chargingSchedule.startSchedule cannot be sent"
            " to an OCPP 2.0.1 station (it requires one, K01.FR.40)"
        )
    purpose = profile["chargingProfilePurpose"]
    out: Payload = {"id": profile["chargingProfileId"], "chargingProfilePurpose": _PURPOSES.get(purpose, purpose)}
    out |= {key: profile[key] for key in _SHARED if key in profile}
    out["chargingSchedule"] = [{"id": 1, **schedule}]
    return out
