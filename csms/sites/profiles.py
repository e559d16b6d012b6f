"""The charging profiles a site sends, per protocol version: the failsafe default and the allocation.

Fixed profile ids replace the previous profile of the same kind (OCPP 1.6 3.13.2); a stack level above the usual
0 keeps the site's limits on top of an operator's own default profiles.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

FAILSAFE_PROFILE_ID = 15_001
ALLOCATION_PROFILE_ID = 15_002
STACK_LEVEL = 5


def _schedule(amps: float, phases: int) -> dict[str, Any]:
    return {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(amps, 1), "numberPhases": phases}],
    }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def failsafe_profile(protocol: str, amps: float, phases: int) -> tuple[str, dict[str, Any]]:
    """TxDefaultProfile on the whole station (connector 0): what any session may draw without an allocation."""
    _check(protocol)
    return "SetChargingProfile", {
        "connectorId": 0,
        "csChargingProfiles": {
            "chargingProfileId": FAILSAFE_PROFILE_ID,
            "stackLevel": STACK_LEVEL,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {**_schedule(amps, phases), "startSchedule": _now()},
        },
    }


def allocation_profile(
    protocol: str, amps: float, phases: int, connector_id: int, transaction_id: int
) -> tuple[str, dict[str, Any]]:
    """TxProfile for the running transaction: the station's share of the site."""
    _check(protocol)
    return "SetChargingProfile", {
        "connectorId": connector_id,
        "csChargingProfiles": {
            "chargingProfileId": ALLOCATION_PROFILE_ID,
            "transactionId": transaction_id,
            "stackLevel": STACK_LEVEL,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {**_schedule(amps, phases), "startSchedule": _now()},
        },
    }


def release_profile(protocol: str) -> tuple[str, dict[str, Any]]:
    """A station leaving the site: its failsafe goes (ClearChargingProfile by id)."""
    _check(protocol)
    return "ClearChargingProfile", {"id": FAILSAFE_PROFILE_ID}


def _check(protocol: str) -> None:
    # OCPP 2.0.1 stations (SetChargingProfile with evseId/chargingProfile) follow once the registry can say which
    # protocol a station speaks; until then every managed station is addressed in 1.6.
    if protocol not in ("1.6", "ocpp1.6"):
        raise ValueError(f"site load management does not speak {protocol} yet")
