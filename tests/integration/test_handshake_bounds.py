"""Handshakes are bounded: a cap on those checked at once, and none slips past a drain.

A real table lock (a psql session) holds a station's handshake in its fence write, after its checks passed,
so the test knows exactly where that handshake is.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected

from devcluster.station import SimulatedStation, accept_everything
from tests.integration.conftest import Running
from tests.integration.psql_session import held_in_transaction, wait_for_lock_waiters

pytestmark = pytest.mark.integration

FENCES_LOCKED = "LOCK TABLE station_fences IN EXCLUSIVE MODE"


async def _connect_and_hold(csms: Running, station_id: str, outcome: list[object], done: trio.Event) -> None:
    """Connect, record what happened (the close code, or the refusal's status), stay until closed."""
    try:
        async with SimulatedStation.connect(csms.ocpp_url, station_id) as station:
            outcome.append("connected")
            with trio.move_on_after(15):
                while station.ws.closed is None:
                    await trio.sleep(0.02)
            outcome.append(station.ws.closed.code if station.ws.closed else "still open")
    except ConnectionRejected as exc:
        outcome.append(exc.status_code)
    finally:
        done.set()


@pytest.mark.parametrize("replica_overrides", [{"CSMS_MAX_CONCURRENT_HANDSHAKES": "1"}])
async def test_a_handshake_over_the_cap_waits_briefly_then_gets_503_with_retry_after(csms: Running) -> None:
    await csms.put_station("CP-FIRST")
    await csms.put_station("CP-SECOND")
    first: list[object] = []
    first_done = trio.Event()
    async with trio.open_nursery() as nursery:
        async with held_in_transaction(csms.database_url, FENCES_LOCKED):
            nursery.start_soon(_connect_and_hold, csms, "CP-FIRST", first, first_done)
            await wait_for_lock_waiters(csms.database_url, "station_fences")  # CP-FIRST holds the only slot
            started = trio.current_time()
            with pytest.raises(ConnectionRejected) as refused:
                async with SimulatedStation.connect(csms.ocpp_url, "CP-SECOND"):
                    pass
            waited = trio.current_time() - started
        assert refused.value.status_code == 503
        retry_after = dict(refused.value.headers or []).get(b"retry-after")
        assert retry_after is not None and 1 <= int(retry_after) <= 5
        assert waited >= 1.9  # it waited for a slot before giving up
        # The slot holder was never disturbed: once its write goes through, it is served.
        with trio.fail_after(10):
            while not first:
                await trio.sleep(0.02)
        assert first == ["connected"]
        async with SimulatedStation.connect(csms.ocpp_url, "CP-SECOND") as second:  # a free slot again
            assert "currentTime" in await second.call("Heartbeat", {})
        nursery.cancel_scope.cancel()


async def _ignoring_shutdown(request: Awaitable[object]) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the replica exits once drained
        await request


@pytest.mark.parametrize("replica_overrides", [{"CSMS_DRAIN_TIMEOUT": "20"}])
async def test_a_handshake_in_flight_when_a_drain_starts_is_sent_elsewhere(csms: Running) -> None:
    """The drain's snapshot misses a handshake that passed its checks but has not registered yet: it must not
    register afterwards and hold the drain until its timeout. A command the served station answers only when
    told keeps the drain busy (it lets calls in flight finish) while the late handshake completes."""
    await csms.put_station("CP-SERVED")
    await csms.put_station("CP-LATE")
    answer_now = trio.Event()

    async def answers_when_told(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "GetConfiguration":
            await answer_now.wait()
        return await accept_everything(action, payload)

    late: list[object] = []
    late_done = trio.Event()
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-SERVED", answer=answers_when_told) as served,
        csms.api() as api,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(_ignoring_shutdown, api.post("/api/v1/stations/CP-SERVED/commands/GetConfiguration"))
        with trio.fail_after(10):
            while not served.received_calls:
                await trio.sleep(0.02)
        async with held_in_transaction(csms.database_url, FENCES_LOCKED):
            nursery.start_soon(_connect_and_hold, csms, "CP-LATE", late, late_done)
            await wait_for_lock_waiters(csms.database_url, "station_fences")  # checks passed, claim in flight
            os.kill(os.getpid(), signal.SIGTERM)  # the replica (in this process) drains
            with trio.fail_after(10):  # not ready any more: the drain has taken its snapshot
                while (await api.get("/readyz")).status_code == 200:
                    await trio.sleep(0.02)
        with trio.fail_after(5):  # well before the 20 s drain timeout
            await late_done.wait()
        answer_now.set()
        with trio.fail_after(10):
            while served.ws.closed is None:
                await trio.sleep(0.02)
    assert served.ws.closed.code == 1001
    assert late in ([503], ["connected", 1001])
