"""CSMS_RECLAIM_TRIGGER: what a station that reconnects without a BootNotification is asked for."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from devcluster.postgres import PostgresServer
from devcluster.station import CallErrorReply, SimulatedStation, accept_everything
from tests.integration.conftest import Running

BOOT = {"requestedMessage": "BootNotification"}
STATUS = [{"requestedMessage": "StatusNotification", "connectorId": c} for c in (0, 1, 2)]


async def _triggers_after_reconnect(
    csms: Running, expected: int, report: tuple[int, ...] = (), within: float = 10
) -> list[dict[str, Any]]:
    """Report connectors 1 and 2 on a booted connection, reconnect without booting (reporting the connectors in
    ``report`` at once, as firmware does), collect TriggerMessages."""
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

    async with SimulatedStation.connect(csms.ocpp_url, "CP-RECLAIM", answer=answer) as again:
        for connector in report:
            await again.status(connector, "Available")
        # The trigger follows the connection after 2 s; "none" waits that long plus a margin for nothing.
        with trio.move_on_after(within if expected else 4):
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


async def test_connectors_reported_after_reconnecting_are_not_asked_for_again(csms: Running) -> None:
    """A reconnect storm is thousands of these: the station already said what its connectors are doing, so the
    new owner asks only for the boot and the rest (connector 0), not for a second copy of each status."""
    # Waits for a third trigger (the old behaviour sent four): none comes, so the wait runs out.
    assert await _triggers_after_reconnect(csms, 3, report=(1, 2), within=6) == [BOOT, STATUS[0]]


async def test_reclaim_during_a_postgres_outage_keeps_the_connection(
    csms: Running, postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The status trigger reads the station's connectors: with Postgres gone that read fails, and the station
    is still asked to boot and stays connected (no traceback), rather than losing its connection to the error."""
    caplog.set_level(logging.WARNING)
    await csms.put_station("CP-RECLAIM-OUT")
    asked = trio.Event()

    async def answer(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "TriggerMessage":
            asked.set()
        return await accept_everything(action, payload)

    try:
        async with SimulatedStation.connect(csms.ocpp_url, "CP-RECLAIM-OUT", answer=answer) as station:
            postgres_server.stop()  # blocks this in-process replica too: its reclaim runs after, with no Postgres
            with trio.fail_after(15):
                await asked.wait()
            with pytest.raises(CallErrorReply) as refused:
                # still connected: answered, not dropped (a write: a Heartbeat is liveness only now)
                await station.call(
                    "StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"}, timeout=30
                )
            assert refused.value.code == "InternalError"
            assert station.received_calls == [("TriggerMessage", BOOT)]
    finally:
        postgres_server.start()
    assert not any(r.exc_info for r in caplog.records), [r.getMessage() for r in caplog.records if r.exc_info]
