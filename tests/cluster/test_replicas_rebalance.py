"""Rebalancing through a plain round-robin balancer: stations spread out again after a scale-out or a restart,
at about one disconnect per station moved, never twice within the cool-down, and charging stations stay put."""

from __future__ import annotations

import random
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
import trio
from replica_cluster import FirmwareStation, open_cluster, run_stations, wait_all_owned, wait_for

from devcluster.station import now_iso

pytestmark = pytest.mark.cluster


async def test_stations_spread_out_after_a_replica_joins_the_balancer(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    env = {"CSMS_REBALANCE_INTERVAL": "1", "CSMS_REBALANCE_TOLERANCE": "0.2", "CSMS_REBALANCE_STATION_COOLDOWN": "0"}
    async with open_cluster(database_url, etcd_url, prefix, tmp_path, replicas=2, env=env) as cluster:
        first, _ = cluster.nodes
        # Only replica-1 is behind the balancer at first: every station lands there.
        all_backends = list(cluster.ocpp_balancer.backends)
        cluster.ocpp_balancer.set_backends([("127.0.0.1", first.replica.ocpp_port)])
        stations = [FirmwareStation(cluster.ocpp_url, f"CP-RB-{i}", rng=random.Random(i)) for i in range(20)]
        async with trio.open_nursery() as nursery:
            await run_stations(nursery, stations)
            owners = await wait_all_owned(cluster, [s.station_id for s in stations])
            assert set(owners.values()) == {first.node_id}

            # Scale-out: replica-2 joins the balancer; the leader notices the imbalance and sheds gradually.
            cluster.ocpp_balancer.set_backends(all_backends)

            async def even() -> bool:
                counts = Counter((await cluster.owners()).values())
                return (
                    len(stations) == sum(counts.values()) and min(counts.values(), default=0) >= 8 and len(counts) == 2
                )

            await wait_for(even, 40, "ownership within tolerance of even")
            # Nothing was lost on the way: every station still gets its answers.
            for station in stations:
                assert "currentTime" in await station.call("Heartbeat", {})
            nursery.cancel_scope.cancel()


STATIONS = 45
CHARGING = 12
COOLDOWN = 5.0


async def test_a_restarted_replica_gets_its_share_back_at_one_disconnect_per_move(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    env = {
        "CSMS_REBALANCE_INTERVAL": "1",
        "CSMS_REBALANCE_TOLERANCE": "0.1",
        "CSMS_REBALANCE_STATION_COOLDOWN": str(COOLDOWN),
    }
    async with open_cluster(database_url, etcd_url, prefix, tmp_path, replicas=3, env=env) as cluster:
        *_, third = cluster.nodes
        ids = [f"CP-RR-{i}" for i in range(STATIONS)]
        stations = [FirmwareStation(cluster.ocpp_url, sid, rng=random.Random(i)) for i, sid in enumerate(ids)]
        charging = stations[:CHARGING]
        async with trio.open_nursery() as nursery:
            await run_stations(nursery, stations)
            await wait_all_owned(cluster, ids)
            settled_at = trio.current_time()
            for i, station in enumerate(charging):
                await station.call("BootNotification", {"chargePointVendor": "SimCo", "chargePointModel": "RB"})
                await station.call(
                    "StartTransaction",
                    {"connectorId": 1, "idTag": "RB", "meterStart": 1000 * i, "timestamp": now_iso()},
                )

            # A rolling restart of replica-3: it drains to the other two, and comes back empty.
            await trio.sleep(max(0.0, settled_at + COOLDOWN - trio.current_time()))  # the originals may move
            cluster.terminate(third)
            assert await cluster.wait_exit(third, 30) == 0
            before = await wait_all_owned(cluster, ids, not_by=[third.node_id])
            connections = {s.station_id: s.connections for s in stations}
            await cluster.restart(third)

            async def even() -> bool:
                counts = Counter((await cluster.owners()).values())
                return sum(counts.values()) == STATIONS and min(counts.get(n.node_id, 0) for n in cluster.nodes) >= 13

            took = await wait_for(even, 60, "ownership back to even after the restart")
            await trio.sleep(3)  # a few more rounds: a converged cluster must stay still
            after = await wait_all_owned(cluster, ids)

            # Moves counted strictly: what the emptier replicas gained (a station shed from one full replica to
            # the other changed owner but was not a useful move).
            moved = sum((Counter(after.values()) - Counter(before.values())).values())
            disconnects = {s.station_id: s.connections - connections[s.station_id] for s in stations}
            total = sum(disconnects.values())
            print(f"rebalanced in {took:.1f}s: {moved} moved, {total} disconnects, {dict(Counter(after.values()))}")
            assert moved >= 10
            assert total <= 1.5 * moved, f"{total} disconnects to move {moved} stations"
            assert {s.station_id: disconnects[s.station_id] for s in charging if disconnects[s.station_id]} == {}
            for station in stations:
                gaps = [b - a for a, b in pairwise(station.closed_at)]
                assert all(gap >= COOLDOWN for gap in gaps), f"{station.station_id} disconnected at {station.closed_at}"
            for station in stations:
                assert "currentTime" in await station.call("Heartbeat", {})
            nursery.cancel_scope.cancel()
