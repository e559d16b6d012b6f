"""Fence tokens across coordinator domains, with real processes (issue 9 item 0).

Stations keep being served when the same Postgres is first served by a lone replica without etcd and then by an
etcd cluster, and when etcd is rebuilt from empty under a running cluster (revisions restart at 1): every claim
is recorded under a newer epoch, and the audit trail still shows one writer per station at a time.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio
from replica_cluster import (
    FAST_ENV,
    FirmwareStation,
    open_cluster,
    ownership_violations,
    run_stations,
    wait_all_owned,
)

from devcluster.etcd import EtcdServer
from devcluster.replica import ReplicaProcess
from devcluster.station import SimulatedStation

pytestmark = pytest.mark.cluster


async def _serve_a_while(url: str, station_ids: list[str]) -> None:
    """Each station connects, boots and sends a heartbeat (fenced writes), then leaves."""
    for station_id in station_ids:
        async with SimulatedStation.connect(url, station_id) as station:
            assert (await station.boot())["status"] == "Accepted"
            await station.call("Heartbeat", {})


async def test_stations_of_a_single_node_are_served_by_the_cluster_that_replaces_it(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    station_ids = [f"CP-UP-{i}" for i in range(4)]
    solo = ReplicaProcess("solo", {**FAST_ENV, "CSMS_DATABASE_URL": database_url}, log_dir=tmp_path)
    solo.start()
    try:
        await trio.to_thread.run_sync(solo.wait_ready, 60.0)
        await _serve_a_while(solo.ocpp_url, station_ids)
        # Restarted, the lone node starts a new domain: its counter starts again, its stations still connect.
        await trio.to_thread.run_sync(solo.stop)
        solo.start()
        await trio.to_thread.run_sync(solo.wait_ready, 60.0)
        await _serve_a_while(solo.ocpp_url, station_ids)
    finally:
        await trio.to_thread.run_sync(solo.stop)

    async with open_cluster(database_url, etcd_url, prefix, tmp_path, replicas=2) as cluster:
        async with trio.open_nursery() as nursery:
            stations = [FirmwareStation(cluster.ocpp_url, sid, rng=random.Random(sid)) for sid in station_ids]
            await run_stations(nursery, stations)
            for station in stations:
                assert "currentTime" in await station.call("Heartbeat", {}, within=15)
            await wait_all_owned(cluster, station_ids)
            nursery.cancel_scope.cancel()
        assert sum(s.connect_failures.total() for s in stations) == 0, [s.connect_failures for s in stations]
        assert ownership_violations(await cluster.audit()) == []


async def test_stations_reconnect_and_are_served_after_etcd_is_rebuilt_from_empty(
    database_url: str, private_etcd: EtcdServer, prefix: str, tmp_path: Path
) -> None:
    async with (
        open_cluster(database_url, private_etcd.client_url, prefix, tmp_path, replicas=2) as cluster,
        trio.open_nursery() as nursery,
    ):
        # Enough claims that the old etcd's revisions are well ahead of what the new one will issue.
        for i in range(200):
            await cluster.etcd.put(f"{prefix}padding/{i}", "x")
        stations = [FirmwareStation(cluster.ocpp_url, f"CP-WIPE-{i}", rng=random.Random(i)) for i in range(4)]
        await run_stations(nursery, stations)
        for station in stations:
            await station.call("Heartbeat", {})
        await wait_all_owned(cluster, [s.station_id for s in stations])

        await trio.to_thread.run_sync(private_etcd.wipe)
        for node in cluster.nodes:
            await cluster.wait_ready(node, timeout=15)
        connections = [s.connections for s in stations]
        refused_before = sum(s.connect_failures.total() for s in stations)
        for station in stations:  # every station comes back with a new claim in the new etcd
            station.drop()
        for station, before in zip(stations, connections, strict=True):
            assert "currentTime" in await station.call("Heartbeat", {}, within=15)
            assert station.connections > before
        await wait_all_owned(cluster, [s.station_id for s in stations], timeout=15)
        refused = sum(s.connect_failures.total() for s in stations) - refused_before
        assert refused == 0, f"{refused} refused reconnects: {[s.connect_failures for s in stations]}"
        assert ownership_violations(await cluster.audit()) == []
        nursery.cancel_scope.cancel()
