"""OCPP 2.0.1 stations get the 1.6 HA guarantees, with real replica processes: an owner SIGKILLed in the middle
of a transaction, and the events of one transaction split across replicas, each leave one transaction with the
right energy, written only under the station's current fence; the new owner asks with 2.0.1 TriggerMessages."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio
from replica_cluster import FirmwareStation, ReplicaCluster, open_cluster, ownership_violations, run_stations, wait_for

from devcluster import station201 as v201

pytestmark = pytest.mark.cluster


async def one_transaction(cluster: ReplicaCluster, station_id: str) -> dict[str, object]:
    rows = await cluster.fetch(
        "SELECT station_tx_id, meter_start, meter_stop, energy_wh, event_count, stop_reason FROM transactions"
        " WHERE station_id = $1",
        station_id,
    )
    assert len(rows) == 1, rows
    return dict(rows[0])


async def test_owner_killed_mid_201_transaction_is_reclaimed_with_201_triggers_and_billed_right(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    async with open_cluster(database_url, etcd_url, prefix, tmp_path) as cluster, trio.open_nursery() as nursery:
        station = FirmwareStation(cluster.ocpp_url, "CP-201-KILL", rng=random.Random(3), subprotocols=["ocpp2.0.1"])
        await run_stations(nursery, [station])
        await station.call("BootNotification", v201.boot())
        await station.call("StatusNotification", v201.status(1, 1, "Occupied"))
        await station.call(
            "TransactionEvent", v201.transaction_event("Started", "TX-K", 0, wh=1000, evse_id=1, connector_id=1)
        )
        await station.call("TransactionEvent", v201.transaction_event("Updated", "TX-K", 1, wh=1500))
        first_owner = await cluster.wait_owned("CP-201-KILL")

        await cluster.kill(cluster.node(first_owner))

        new_owner = await cluster.wait_owned("CP-201-KILL", not_by=[first_owner], timeout=10)
        await station.wait_connected(10)
        await station.call("TransactionEvent", v201.transaction_event("Updated", "TX-K", 2, wh=2000))
        await station.call("TransactionEvent", v201.transaction_event("Ended", "TX-K", 3, wh=3000))
        assert await one_transaction(cluster, "CP-201-KILL") == {
            "station_tx_id": "TX-K", "meter_start": 1000, "meter_stop": 3000, "energy_wh": 2000, "event_count": 4,
            "stop_reason": "Local",
        }  # fmt: skip

        async def triggered() -> bool:
            current = station.current
            calls = current.received_calls if current is not None else []
            return {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}} in [
                p for a, p in calls if a == "TriggerMessage"
            ]

        await wait_for(triggered, 8, "2.0.1 TriggerMessage(StatusNotification, EVSE 1 connector 1) after reclaim")
        audit = await cluster.audit()
        assert ownership_violations(audit) == []
        writers = {r["writer"] for r in audit if r["kind"] == "transactions"}
        assert writers == {first_owner, new_owner}
        nursery.cancel_scope.cancel()


async def test_events_of_one_201_transaction_split_across_replicas_make_one_transaction(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    async with (
        open_cluster(database_url, etcd_url, prefix, tmp_path, replicas=2) as cluster,
        trio.open_nursery() as nursery,
    ):
        a, b = cluster.nodes
        events = [
            v201.transaction_event("Started", "TX-S", 0, wh=500, evse_id=2, connector_id=1, id_token="T"),
            v201.transaction_event("Updated", "TX-S", 1, wh=900),
            v201.transaction_event("Updated", "TX-S", 2, wh=1300, offline=True),
            v201.transaction_event("Ended", "TX-S", 3, wh=1700),
        ]
        # Each connection pinned to one replica; every new one takes the station over from the previous.
        plan = [(a, [events[0], events[2]]), (b, [events[1], events[0]]), (a, [events[3], events[2]]), (b, [events[1]])]
        for node, batch in plan:
            conn = FirmwareStation(node.ocpp_url, "CP-201-SPLIT", reconnect=False, subprotocols=["ocpp2.0.1"])
            await nursery.start(conn.run)
            if batch[0] is events[0] and node is a:
                await conn.call("BootNotification", v201.boot())
            for event in batch:
                await conn.call("TransactionEvent", event)
            await cluster.wait_owned("CP-201-SPLIT", by=[node.node_id], timeout=5)
        assert await one_transaction(cluster, "CP-201-SPLIT") == {
            "station_tx_id": "TX-S", "meter_start": 500, "meter_stop": 1700, "energy_wh": 1200, "event_count": 4,
            "stop_reason": "Local",
        }  # fmt: skip
        audit = await cluster.audit()
        assert ownership_violations(audit) == []
        assert {r["writer"] for r in audit if r["kind"] == "transactions"} == {a.node_id, b.node_id}
        nursery.cancel_scope.cancel()
