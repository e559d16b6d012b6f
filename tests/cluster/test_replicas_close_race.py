"""Closes raced against transactions: drain, shed and takeover while many stations start and stop charging.

Every frame a station sends is counted: answered (acknowledged) or not (the connection closed first; the
station resends it on its next connection with a new message id, as firmware does). The replicas must never
answer with a CallError for a close (a station may take that as final) and never acknowledge what they did not
store; in the end every transaction the stations started is stored exactly once, with the acknowledged id, and
closed with the acknowledged meterStop.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections import Counter
from pathlib import Path

import pytest
import trio
from replica_cluster import (
    FAST_ENV,
    FirmwareStation,
    ReplicaCluster,
    open_cluster,
    ownership_violations,
    run_stations,
    wait_all_owned,
)

from devcluster.station import Payload, SimulatedStation, now_iso

pytestmark = pytest.mark.cluster

# 50 by default (a 2-core CI host also runs the replicas, Postgres and etcd); CSMS_CLOSE_RACE_STATIONS=300 for more.
STATIONS = int(os.environ.get("CSMS_CLOSE_RACE_STATIONS", "50"))
SHED_PER_REPLICA = STATIONS // 6
TAKEOVERS = STATIONS // 8


async def _call(station: FirmwareStation, action: str, payload: Payload) -> Payload:
    try:
        return await station.call(action, payload, within=60)
    except trio.TooSlowError:
        raise AssertionError(
            f"{station.station_id}: {action} unacknowledged for 60 s; last attempts {station.attempts[-3:]},"
            f" connect failures {dict(station.connect_failures)}, connections {station.connections},"
            f" close codes {station.close_codes}, current {station.current and station.current.ws.closed}"
        ) from None


async def _charge(station: FirmwareStation, stop: trio.Event) -> None:
    """Start and stop transactions back to back until told to stop; never leaves one open."""
    rng = station.rng
    status = {"connectorId": 1, "status": "Available", "errorCode": "NoError", "timestamp": now_iso()}
    await _call(station, "StatusNotification", status)
    n = 0
    while not stop.is_set():
        n += 1
        start = {"connectorId": 1, "idTag": "TAG", "meterStart": n * 1000, "timestamp": now_iso()}
        started = await _call(station, "StartTransaction", start)
        await trio.sleep(0.05 + 0.2 * rng.random())
        stop_payload = {
            "transactionId": started["transactionId"],
            "meterStop": n * 1000 + 100,
            "timestamp": now_iso(),
            "reason": "Local",
        }
        await _call(station, "StopTransaction", stop_payload)
        await trio.sleep(0.05 + 0.2 * rng.random())


async def _shed(cluster: ReplicaCluster, node_index: int, count: int) -> None:
    async with cluster.api(cluster.nodes[node_index], timeout=30) as api:
        response = await api.post(
            "/internal/v1/shed",
            json={"count": count, "may_interrupt": count},  # every station here is charging
            headers={"X-CSMS-Internal-Secret": FAST_ENV["CSMS_INTERNAL_SECRET"]},
        )
        assert response.status_code == 200, response.text


async def _take_over(cluster: ReplicaCluster, station_ids: list[str], rng: random.Random) -> None:
    """A second connection of the same station on another replica (the newest wins), then gone again."""
    owners = await cluster.owners()
    for station_id in station_ids:
        others = [n for n in cluster.nodes[:2] if n.node_id != owners.get(station_id)]
        with contextlib.suppress(Exception):  # refused while the station moves: the race is the point
            async with SimulatedStation.connect(rng.choice(others).ocpp_url, station_id, connect_timeout=5):
                await trio.sleep(0.2)
        await trio.sleep(0.05)


async def test_drain_shed_and_takeover_lose_no_call_and_acknowledge_only_what_is_stored(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    rng = random.Random(11)
    env = {"CSMS_RECLAIM_TRIGGER": "none", "CSMS_DB_POOL_SIZE": "6", "CSMS_REBALANCE_STATION_COOLDOWN": "0"}
    async with open_cluster(database_url, etcd_url, prefix, tmp_path, env=env) as cluster:
        stations = [
            FirmwareStation(cluster.ocpp_url, f"CP-RACE-{i}", rng=random.Random(rng.random()), call_timeout=10)
            for i in range(STATIONS)
        ]
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            await run_stations(nursery, stations)
            async with trio.open_nursery() as charging:
                for station in stations:
                    charging.start_soon(_charge, station, stop)
                await wait_all_owned(cluster, [s.station_id for s in stations], timeout=60)
                await trio.sleep(2)  # transactions in full flow on every replica
                drained = cluster.nodes[2]
                async with trio.open_nursery() as closes:
                    closes.start_soon(_shed, cluster, 0, SHED_PER_REPLICA)
                    closes.start_soon(_shed, cluster, 1, SHED_PER_REPLICA)
                    closes.start_soon(_take_over, cluster, [s.station_id for s in rng.sample(stations, TAKEOVERS)], rng)
                    cluster.terminate(drained)
                    assert await cluster.wait_exit(drained, 30) == 0, drained.replica.log_tail()
                cluster.ocpp_balancer.set_backends([("127.0.0.1", n.replica.ocpp_port) for n in cluster.nodes[:2]])
                await trio.sleep(3)  # calls keep flowing on the survivors
                stop.set()  # each station finishes the transaction in progress
                charging.cancel_scope.deadline = trio.current_time() + 120
            assert not charging.cancel_scope.cancelled_caught, "stations could not finish their transactions"
            nursery.cancel_scope.cancel()

        acked = Counter(a.action for s in stations for a in s.acked)
        unanswered = Counter(f"{a.action} {a.outcome}" for s in stations for a in s.attempts)
        reconnects = sum(s.connections for s in stations) - STATIONS
        sent = sum(acked.values()) + sum(unanswered.values())
        print(
            f"{STATIONS} stations, {reconnects} reconnects: frames sent {sent}, answered {dict(acked)},"
            f" unanswered (resent) {dict(unanswered)}"
        )
        errors = [
            f"{s.station_id}: {a.action} {a.outcome}" for s in stations for a in s.attempts if "CallError" in a.outcome
        ]
        assert errors == [], f"CallErrors for closes (a station may take them as final): {errors[:10]}"

        rows = await cluster.fetch(
            "SELECT station_id, id, meter_start, meter_stop, stop_received_at FROM transactions"
            " WHERE station_id = ANY($1::text[])",
            [s.station_id for s in stations],
        )
        stored: dict[tuple[str, int], list[dict[str, object]]] = {}
        for row in rows:
            stored.setdefault((row["station_id"], row["meter_start"]), []).append(dict(row))
        problems: list[str] = []
        for station in stations:
            starts = {
                a.payload["meterStart"]: a.result["transactionId"]
                for a in station.acked
                if a.action == "StartTransaction"
            }
            stops = {
                a.payload["transactionId"]: a.payload["meterStop"]
                for a in station.acked
                if a.action == "StopTransaction"
            }
            for meter_start, tx_id in starts.items():
                found = stored.get((station.station_id, meter_start), [])
                if [r["id"] for r in found] != [tx_id]:
                    problems.append(f"{station.station_id} start {meter_start} acked as {tx_id}, stored as {found}")
                elif stops.get(tx_id) is None or found[0]["meter_stop"] != stops[tx_id]:
                    problems.append(f"{station.station_id} transaction {tx_id} not closed as acked: {found[0]}")
            extra = [k for k in stored if k[0] == station.station_id and k[1] not in starts]
            if extra:
                problems.append(f"{station.station_id} stored starts never acknowledged: {extra}")
        assert problems == [], problems[:20]
        assert ownership_violations(await cluster.audit()) == []
