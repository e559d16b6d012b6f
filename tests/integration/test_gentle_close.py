"""A close this replica starts (here: rebalancing's shed) answers every call it has read before it closes.

The station's fenced writes are held up by a real row lock on its fence row (a psql session), so that when the
shed starts, calls the replica has provably read sit in the handler, the inbox and the WebSocket buffer.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from csms.storage import Database
from devcluster.station import SimulatedStation
from tests.integration.conftest import Running
from tests.integration.psql_session import held_in_transaction

SECRET = "gentle-close-test-secret"
STATION = "CP-GENTLE"
CALLS = 12


def writes_held_up(database_url: str, station_id: str) -> AbstractAsyncContextManager[None]:
    """Hold the station's fence row FOR UPDATE: its fenced writes (FOR SHARE) wait until the block ends."""
    lock = f"SELECT FROM station_fences WHERE station_id = '{station_id}' FOR UPDATE"
    return held_in_transaction(database_url, lock)


def _start(n: int, base: datetime) -> str:
    timestamp = (base + timedelta(milliseconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    payload = {"connectorId": 1, "idTag": "TAG", "meterStart": n, "timestamp": timestamp}
    return orjson.dumps([2, f"s{n}", "StartTransaction", payload]).decode()


async def _answers_until_closed(ws: WebSocketConnection) -> tuple[list[list[Any]], int | None]:
    frames: list[list[Any]] = []
    with trio.fail_after(30):
        try:
            while True:
                frames.append(orjson.loads(await ws.get_message()))
        except ConnectionClosed as closed:
            return frames, closed.reason.code


# No rebalancing cool-down: the connection under test is seconds old.
OVERRIDES = {"CSMS_INTERNAL_SECRET": SECRET, "CSMS_RECLAIM_TRIGGER": "none", "CSMS_REBALANCE_STATION_COOLDOWN": "0"}


@pytest.mark.parametrize("replica_overrides", [OVERRIDES])
async def test_shed_answers_and_stores_every_call_it_read(csms: Running) -> None:
    await csms.put_station(STATION)
    async with SimulatedStation.connect(csms.ocpp_url, STATION) as station:
        await station.boot()
        await station.status(1, "Available")
    command: dict[str, Any] = {}
    shed_done = trio.Event()

    async def get_configuration() -> None:
        async with csms.api() as api:
            command["response"] = await api.post(f"/api/v1/stations/{STATION}/commands/GetConfiguration", json={})

    async def shed() -> None:
        async with csms.api() as api:
            response = await api.post(
                "/internal/v1/shed", json={"count": 1, "may_interrupt": 1}, headers={"X-CSMS-Internal-Secret": SECRET}
            )
        assert response.json() == {"shed": 1}, response.text
        shed_done.set()

    async with (
        open_websocket_url(f"{csms.ocpp_url}/{STATION}", subprotocols=["ocpp1.6"]) as ws,
        trio.open_nursery() as nursery,
    ):
        async with writes_held_up(csms.database_url, STATION):
            nursery.start_soon(get_configuration)
            call = orjson.loads(await ws.get_message())
            assert call[2] == "GetConfiguration"
            base = datetime.now(UTC)
            for n in range(CALLS):
                await ws.send_message(_start(n, base))
            await ws.send_message(orjson.dumps([3, call[1], {"configurationKey": []}]).decode())
            # The replica reads frames in order: once it has our answer, it has read every StartTransaction.
            while "response" not in command:
                await trio.sleep(0.01)
            assert command["response"].json()["status"] == "completed"
            nursery.start_soon(shed)
            with trio.move_on_after(5):  # the shed must not wait for the held-up writes to close
                await shed_done.wait()
        frames, code = await _answers_until_closed(ws)

    assert [frame[:2] for frame in frames] == [[3, f"s{n}"] for n in range(CALLS)], frames
    assert code == 1001
    async with Database.open(csms.database_url, pool_size=1, group_commit=False) as db:
        rows = await db.fetch("SELECT meter_start FROM transactions WHERE station_id = $1", STATION)
    assert sorted(r["meter_start"] for r in rows) == list(range(CALLS))
