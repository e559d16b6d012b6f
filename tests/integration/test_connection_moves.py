"""Connections moved in from another replica, per minute (the cluster page's table), from the recorded history."""

from __future__ import annotations

import pytest
import trio

from csms import outbox, stations
from csms.storage import Database

pytestmark = pytest.mark.integration


async def test_a_connection_records_the_replica_before_it_and_moves_count_only_changes(db: Database) -> None:
    await db.migrate([("outbox", outbox.MIGRATIONS), ("stations", stations.MIGRATIONS)])
    for station_id in ("S1", "S2"):
        await db.execute("INSERT INTO stations (id) VALUES ($1)", station_id)
    a, b = stations.PresenceRecorder(db, "a", interval=0.01), stations.PresenceRecorder(db, "b", interval=0.01)
    fleet = stations.FleetViews(db)

    async def recorded(count: int) -> None:
        with trio.fail_after(10):
            while await db.fetchval("SELECT count(*) FROM station_connections") < count:
                await trio.sleep(0.02)

    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        a.connected("S1", "c1", "ocpp1.6")
        await recorded(1)
        b.connected("S1", "c2", "ocpp1.6")  # moved from a
        b.connected("S1", "c3", "ocpp1.6")  # in the same batch: a reconnect to b, not a move
        b.connected("S2", "c4", "ocpp1.6")  # first connection on record
        await recorded(4)
        nursery.cancel_scope.cancel()

    previous = await db.fetch("SELECT connection_id, previous_node_id FROM station_connections ORDER BY id")
    assert [(r["connection_id"], r["previous_node_id"]) for r in previous] == [
        ("c1", None),
        ("c2", "a"),
        ("c3", "b"),
        ("c4", None),
    ]
    totals = {row["node_id"]: (row["connections"], row["moved_in"]) for row in await fleet.moves(minutes=60)}
    assert totals == {"a": (1, 0), "b": (3, 1)}
