"""Crash durability: Postgres with fsync on is SIGKILLed under load; every message the CSMS acknowledged is
found after WAL recovery. The shared test server runs with fsync off, so this test brings its own."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import trio

from csms.app import run
from csms.config import load
from csms.storage import Database
from devcluster.postgres import PostgresServer
from devcluster.station import SimulatedStation
from tests.integration.conftest import replica_env

pytestmark = pytest.mark.integration

STATIONS = 12


@dataclass
class Acked:
    """What the CSMS answered with a CallResult: the promise under test."""

    started: dict[int, str] = field(default_factory=dict)  # transaction id -> station
    stopped: set[int] = field(default_factory=set)
    meter_readings: set[tuple[int, int]] = field(default_factory=set)  # (transaction id, Wh)
    failed_calls: int = 0


@pytest.fixture
def durable_server() -> Iterator[PostgresServer]:
    with PostgresServer(settings={"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}) as server:
        assert server.psql("SHOW fsync").strip().endswith("on")
        yield server


async def charge_repeatedly(url: str, station_id: str, acked: Acked, stop: trio.Event) -> None:
    """Whole sessions in a loop; any failure (connection lost, CallError while Postgres is down) reconnects."""
    wh = itertools.count(1000, 10)
    while not stop.is_set():
        try:
            async with SimulatedStation.connect(url, station_id, connect_timeout=5) as cp:
                await cp.status(1, "Available")
                while not stop.is_set():
                    started = await cp.start_transaction(1, "TAG", meter_start=next(wh))
                    tx = started["transactionId"]
                    acked.started[tx] = station_id
                    for _ in range(3):
                        reading = next(wh)
                        await cp.meter_values(1, tx, reading)
                        acked.meter_readings.add((tx, reading))
                    await cp.stop_transaction(tx, next(wh))
                    acked.stopped.add(tx)
        except Exception:  # CallError, lost connection or refused handshake (often in an ExceptionGroup)
            acked.failed_calls += 1
            await trio.sleep(0.2)


async def test_acknowledged_messages_survive_a_postgres_sigkill(durable_server: PostgresServer) -> None:
    url = durable_server.url()
    env = replica_env(url, CSMS_REGISTRATION="auto", CSMS_GROUP_COMMIT="true")
    config = load(environ=env)
    acked = Acked()
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        ports = await nursery.start(run, config)
        ocpp_url = f"ws://127.0.0.1:{ports['ocpp_port']}/ocpp"
        async with trio.open_nursery() as load_nursery:
            for n in range(STATIONS):
                load_nursery.start_soon(charge_repeatedly, ocpp_url, f"CRASH-{n}", acked, stop)
            with trio.fail_after(30):
                while len(acked.stopped) < 3 * STATIONS:  # steady load before the crash
                    await trio.sleep(0.05)
            before_crash = len(acked.started)
            await trio.to_thread.run_sync(durable_server.kill)
            await trio.sleep(0.5)
            await trio.to_thread.run_sync(durable_server.start)  # WAL recovery on the same data directory
            recovered = len(acked.stopped)
            with trio.fail_after(60):
                while len(acked.stopped) < recovered + 2 * STATIONS:  # the load resumed after recovery
                    await trio.sleep(0.05)
            stop.set()
        nursery.cancel_scope.cancel()

    assert acked.failed_calls > 0, "the crash should have interrupted some calls"
    async with Database.open(durable_server.url(), pool_size=1) as db:
        rows = await db.fetch("SELECT id, station_id, stop_received_at IS NOT NULL AS stopped FROM transactions")
        readings = await db.fetch(
            "SELECT transaction_id, value FROM meter_values WHERE source = 'MeterValues' AND transaction_id <> 0"
        )
    stored = {row["id"]: (row["station_id"], row["stopped"]) for row in rows}
    lost_starts = [tx for tx, station in acked.started.items() if stored.get(tx, ("", False))[0] != station]
    lost_stops = [tx for tx in acked.stopped if not stored.get(tx, ("", False))[1]]
    stored_readings = {(row["transaction_id"], int(row["value"])) for row in readings}
    lost_readings = acked.meter_readings - stored_readings
    assert not lost_starts and not lost_stops and not lost_readings, (lost_starts, lost_stops, lost_readings)
    assert len(acked.started) > before_crash
