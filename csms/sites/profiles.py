"""The charging profiles a site sends, in the station's protocol: the failsafe default and the allocation.

Fixed profile ids replace the previous profile of the same kind (OCPP 1.6 3.13.2, 2.0.1 K01.FR.05); a stack level
above the usual 0 keeps the site's limits on top of an operator's own default profiles.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

FAILSAFE_PROFILE_ID = 15_001
ALLOCATION_PROFILE_ID = 15_002
STACK_LEVEL = 5
V16, V201 = "ocpp1.6", "ocpp2.0.1"

Message = tuple[str, dict[str, Any]]


def _schedule(amps: float, phases: int) -> dict[str, Any]:
    return {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(amps, 1), "numberPhases": phases}],
        "startSchedule": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _profile(protocol: str, profile_id: int, purpose: str, amps: float, phases: int) -> dict[str, Any]:
    common = {"stackLevel": STACK_LEVEL, "chargingProfilePurpose": purpose, "chargingProfileKind": "Absolute"}
    if protocol == V16:
        return {"chargingProfileId": profile_id, **common, "chargingSchedule": _schedule(amps, phases)}
    if protocol == V201:
        return {"id": profile_id, **common, "chargingSchedule": [{"id": 1, **_schedule(amps, phases)}]}
    raise ValueError(f"site load management does not speak {protocol}")


def failsafe_profile(protocol: str, amps: float, phases: int) -> Message:
    """The station-wide cap (1.6 ChargePointMaxProfile on connector 0; 2.0.1 ChargingStationMaxProfile on EVSE 0):
    what all its connectors together may draw, with or without the CSMS. A TxDefaultProfile on connector/EVSE 0
    would apply to each connector, so a station charging two cars could draw twice its failsafe."""
    purpose = "ChargePointMaxProfile" if protocol == V16 else "ChargingStationMaxProfile"
    profile = _profile(protocol, FAILSAFE_PROFILE_ID, purpose, amps, phases)
    if protocol == V16:
        return "SetChargingProfile", {"connectorId": 0, "csChargingProfiles": profile}
    return "SetChargingProfile", {"evseId": 0, "chargingProfile": profile}


def allocation_profile(protocol: str, amps: float, phases: int, where: int, transaction: int | str) -> Message:
    """TxProfile for the running transaction (1.6: connector and transactionId; 2.0.1: EVSE and the station's
    own transactionId): this EVSE's share of the site. One id per EVSE (15002, 15102, ...): a profile replaces
    another with the same id on any connector."""
    profile = _profile(protocol, ALLOCATION_PROFILE_ID + 100 * max(0, where - 1), "TxProfile", amps, phases)
    profile["transactionId"] = transaction
    if protocol == V16:
        return "SetChargingProfile", {"connectorId": where, "csChargingProfiles": profile}
    return "SetChargingProfile", {"evseId": where, "chargingProfile": profile}


def release_profile(protocol: str) -> Message:
    """A station leaving the site: its failsafe goes."""
    if protocol == V16:
        return "ClearChargingProfile", {"id": FAILSAFE_PROFILE_ID}
    if protocol == V201:
        return "ClearChargingProfile", {"chargingProfileId": FAILSAFE_PROFILE_ID}
    raise ValueError(f"site load management does not speak {protocol}")
