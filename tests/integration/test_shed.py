"""A replica carrying out a shed order: idle stations go, charging ones stay, and newcomers are turned away
(503, Retry-After) while it is full, but never locked out."""

from __future__ import annotations

import pytest
import trio
from trio_websocket import ConnectionRejected

from devcluster.station import SimulatedStation
from tests.integration.conftest import Running

SECRET = "integration-internal-secret"
pytestmark = pytest.mark.parametrize(
    "replica_overrides",
    [{"CSMS_REGISTRATION": "auto", "CSMS_INTERNAL_SECRET": SECRET, "CSMS_REBALANCE_STATION_COOLDOWN": "0"}],
)


async def _closed(station: SimulatedStation) -> None:
    with trio.fail_after(10):
        while station.ws.closed is None:
            await trio.sleep(0.02)


async def test_shed_takes_idle_stations_and_holds_admission_without_locking_anyone_out(csms: Running) -> None:
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-IDLE") as idle,
        SimulatedStation.connect(csms.ocpp_url, "CP-CHARGING") as charging,
    ):
        await charging.start_transaction(1, "TAG-1", 100)
        async with csms.api() as api:
            shed = await api.post(
                "/internal/v1/shed",
                json={"count": 2, "target": 1, "may_interrupt": 0, "hold": 30},
                headers={"X-CSMS-Internal-Secret": SECRET},
            )
        assert shed.json() == {"shed": 1}
        await _closed(idle)
        assert idle.ws.closed is not None and idle.ws.closed.code == 1001
        assert "currentTime" in await charging.call("Heartbeat", {})  # the charging station was left alone

        # Still at its share (1): the idle station's return is refused a few times, then accepted.
        refusals = []
        while True:
            try:
                async with SimulatedStation.connect(csms.ocpp_url, "CP-IDLE") as back:
                    assert "currentTime" in await back.call("Heartbeat", {})
                    break
            except ConnectionRejected as exc:
                refusals.append((exc.status_code, dict(exc.headers or []).get(b"retry-after")))
        assert refusals == [(503, b"1")] * 3


async def test_malformed_shed_orders_are_refused(csms: Running) -> None:
    async with csms.api() as api:
        for body in ({}, {"count": -1}, {"count": True}, {"count": 1, "hold": "5"}, {"count": 1, "target": 1.5}):
            response = await api.post("/internal/v1/shed", json=body, headers={"X-CSMS-Internal-Secret": SECRET})
            assert response.status_code == 400, body
