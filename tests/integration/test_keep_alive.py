"""WebSocket keep-alive: a station that closes while its calls wait on a slow write ends its connection quietly.

The station's fenced writes are held up by a row lock, so the replica's reader waits on a full inbox while the
station closes; the next ping then meets a closed connection, which is the station leaving, not a failure."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import pytest
import trio
from trio_websocket import open_websocket_url

from devcluster.station import SimulatedStation
from tests.integration.conftest import Running
from tests.integration.test_gentle_close import _start, writes_held_up

STATION = "CP-KEEPALIVE"
CALLS = 36  # one in the handler, 32 in the inbox, one held by the reader, the rest in the WebSocket's buffer


@pytest.mark.parametrize("replica_overrides", [{"CSMS_PING_INTERVAL": "0.2", "CSMS_RECLAIM_TRIGGER": "none"}])
async def test_a_ping_on_a_connection_the_station_closed_logs_no_traceback(
    csms: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await csms.put_station(STATION)
    async with SimulatedStation.connect(csms.ocpp_url, STATION) as station:
        await station.boot()

    def gone() -> bool:
        return any(r.getMessage() == "station disconnected" and r.station_id == STATION for r in caplog.records)

    async with AsyncExitStack() as held:
        async with open_websocket_url(f"{csms.ocpp_url}/{STATION}", subprotocols=["ocpp1.6"]) as ws:
            await ws.send_message('[2,"hb","Heartbeat",{}]')
            await ws.get_message()  # connected and claimed (the claim writes the fence row we lock next)
            await held.enter_async_context(writes_held_up(csms.database_url, STATION))
            base = datetime.now(UTC)
            for n in range(CALLS):
                await ws.send_message(_start(n, base))
        caplog.clear()  # the station has closed; its calls still wait on the lock
        with trio.fail_after(10):
            while not gone():
                await trio.sleep(0.05)
    failures = [r for r in caplog.records if r.exc_info]
    assert failures == [], [r.getMessage() for r in failures]
