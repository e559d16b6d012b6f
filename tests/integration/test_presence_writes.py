"""Presence written by two replicas at once: one losing the stations another is gaining (a rebalance, a drain,
a failover's late disconnects) must not deadlock their transactions."""

from __future__ import annotations

import logging

import pytest
import trio

from csms import outbox, stations
from csms.storage import Database

pytestmark = pytest.mark.integration

STATIONS = [f"S{i:04d}" for i in range(300)]


async def test_a_replica_losing_stations_and_one_gaining_them_never_deadlock(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await db.migrate([("outbox", outbox.MIGRATIONS), ("stations", stations.MIGRATIONS)])
    await db.execute("INSERT INTO stations (id) SELECT unnest($1::text[])", STATIONS)
    recorders = {node: stations.PresenceRecorder(db, node, interval=0.01) for node in "ab"}

    async def settled(moves: int) -> None:
        """Every connect and disconnect of ``moves`` moves is written."""
        with trio.fail_after(20):
            while await db.fetchval(
                "SELECT count(*) FILTER (WHERE disconnected_at IS NOT NULL) + count(*) FROM station_connections"
            ) < len(STATIONS) * (2 * moves + 1):
                await trio.sleep(0.02)

    caplog.set_level(logging.WARNING, logger="csms.stations.fleet")
    async with trio.open_nursery() as nursery:
        for recorder in recorders.values():
            await nursery.start(recorder.run)
        for station in STATIONS:
            recorders["a"].connected(station, f"a0-{station}", "ocpp1.6")
        await settled(0)
        holder = "a"
        for round_ in range(1, 5):  # the stations move back and forth; each side queues its burst in its own order
            taker = "b" if holder == "a" else "a"
            for station in reversed(STATIONS):
                recorders[holder].disconnected(station, f"{holder}{round_ - 1}-{station}", "moved")
            for station in STATIONS:
                recorders[taker].connected(station, f"{taker}{round_}-{station}", "ocpp1.6")
            await settled(round_)
            holder = taker
        nursery.cancel_scope.cancel()

    assert [r.getMessage() for r in caplog.records if "presence not recorded" in r.getMessage()] == []
    rows = await db.fetch("SELECT node_id, connection_id, disconnected_at FROM station_presence")
    assert {(r["node_id"], r["disconnected_at"]) for r in rows} == {("a", None)}
    assert {r["connection_id"] for r in rows} == {f"a4-{s}" for s in STATIONS}
