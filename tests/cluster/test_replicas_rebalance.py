"""Scale-out: the leader asks the over-loaded replica to shed stations until ownership is near even."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
import trio
from replica_cluster import FirmwareStation, open_cluster, run_stations, wait_all_owned, wait_for

pytestmark = pytest.mark.cluster


async def test_stations_spread_out_after_a_replica_joins_the_balancer(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    env = {"CSMS_REBALANCE_INTERVAL": "1", "CSMS_REBALANCE_TOLERANCE": "0.2"}
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
