"""CSMS_RECLAIM_TRIGGER: what a station that reconnects without a BootNotification is asked for."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from csms.devtools.station import SimulatedStation, accept_everything
from tests.integration.conftest import Running

BOOT = {"requestedMessage": "BootNotification"}
STATUS = [{"requestedMessage": "StatusNotification", "connectorId": c} for c in (0, 1, 2)]


async def _triggers_after_reconnect(csms: Running, expected: int) -> list[dict[str, Any]]:
    """Report connectors 1 and 2 on a booted connection, reconnect without booting, collect TriggerMessages."""
    await csms.put_station("CP-RECLAIM")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-RECLAIM") as station:
        await station.boot()
        await station.status(1, "Available")
        await station.status(2, "Available")
    triggers: list[dict[str, Any]] = []
    enough = trio.Event()

    async def answer(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "TriggerMessage":
            triggers.append(payload)
            if len(triggers) >= expected:
                enough.set()
        return await accept_everything(action, payload)

    async with SimulatedStation.connect(csms.ocpp_url, "CP-RECLAIM", answer=answer):
        # The trigger follows the connection after 2 s; "none" waits that long plus a margin for nothing.
        with trio.move_on_after(10 if expected else 4):
            await enough.wait()
    return triggers


@pytest.mark.parametrize(
    ("replica_overrides", "expected"),
    [
        ({}, [BOOT, *STATUS]),  # the default: both
        ({"CSMS_RECLAIM_TRIGGER": "both"}, [BOOT, *STATUS]),
        ({"CSMS_RECLAIM_TRIGGER": "status"}, STATUS),
        ({"CSMS_RECLAIM_TRIGGER": "boot"}, [BOOT]),
        ({"CSMS_RECLAIM_TRIGGER": "none"}, []),
    ],
    ids=["default", "both", "status", "boot", "none"],
)
async def test_reconnect_without_boot_gets_the_configured_triggers(
    csms: Running, expected: list[dict[str, Any]]
) -> None:
    assert await _triggers_after_reconnect(csms, len(expected)) == expected
