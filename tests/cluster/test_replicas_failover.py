"""Failover with real replica processes: crashes, double connections, leader loss, drain, etcd and Postgres restarts.

Three `csms serve` processes share Postgres and etcd; stations reach them through a TCP balancer and behave like
firmware (reconnect with backoff, resend unanswered calls with new message ids). Every test is bounded in time.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio
from replica_cluster import (
    FirmwareStation,
    ReplicaCluster,
    open_cluster,
    ownership_violations,
    run_stations,
    wait_all_owned,
    wait_for,
)

from devcluster.etcd import EtcdServer
from devcluster.postgres import PostgresServer
from devcluster.station import SimulatedStation, now_iso

pytestmark = pytest.mark.cluster

TTL = 2.0


async def _meter_sample(cluster: ReplicaCluster, station_id: str, tx_id: int, value: str) -> int:
    rows = await cluster.fetch(
        "SELECT count(*) AS n FROM meter_values WHERE station_id = $1 AND transaction_id = $2 AND value = $3",
        station_id,
        tx_id,
        value,
    )
    return int(rows[0]["n"])


async def test_owner_killed_mid_transaction_is_reclaimed_and_billed_right(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    async with open_cluster(database_url, etcd_url, prefix, tmp_path) as cluster, trio.open_nursery() as nursery:
        station = FirmwareStation(cluster.ocpp_url, "CP-KILL", rng=random.Random(1))
        await run_stations(nursery, [station])
        await station.call("BootNotification", _BOOT)
        await station.call("StatusNotification", {"connectorId": 1, "status": "Charging", "errorCode": "NoError"})
        started = await station.call(
            "StartTransaction", {"connectorId": 1, "idTag": "TAG-1", "meterStart": 1000, "timestamp": now_iso()}
        )
        tx_id = started["transactionId"]
        await station.call("MeterValues", _meter_values(tx_id, 1500))
        first_owner = await cluster.wait_owned("CP-KILL")
        connections_before = station.connections

        await cluster.kill(cluster.node(first_owner))

        # The station notices, reconnects through the balancer and lands on a survivor, which claims it.
        new_owner = await cluster.wait_owned("CP-KILL", not_by=[first_owner], timeout=10)
        await station.wait_connected(10)
        assert station.connections > connections_before
        await station.call("MeterValues", _meter_values(tx_id, 2000))
        stopped = await station.call(
            "StopTransaction",
            {"transactionId": tx_id, "meterStop": 3000, "timestamp": now_iso(), "reason": "Local"},
        )
        assert stopped == {}
        assert await cluster.owner_via_api("CP-KILL") == new_owner

        rows = await cluster.fetch("SELECT meter_start, meter_stop, energy_wh FROM transactions WHERE id = $1", tx_id)
        assert [dict(r) for r in rows] == [{"meter_start": 1000, "meter_stop": 3000, "energy_wh": 2000}]
        assert await _meter_sample(cluster, "CP-KILL", tx_id, "1500") == 1
        assert await _meter_sample(cluster, "CP-KILL", tx_id, "2000") == 1

        # Reclaim: the survivor asks a station that came back without booting for its connector states.
        async def triggered() -> bool:
            current = station.current
            return current is not None and any(a == "TriggerMessage" for a, _ in current.received_calls)

        await wait_for(triggered, 6, "TriggerMessage(StatusNotification) after reclaim")

        audit = await cluster.audit()
        assert ownership_violations(audit) == []
        stop_writers = [r["writer"] for r in audit if r["kind"] == "transactions" and r["row_id"] == tx_id]
        assert stop_writers == [first_owner, new_owner]  # start on the dead replica, stop on the survivor
        nursery.cancel_scope.cancel()


def _meter_values(tx_id: int, wh: int) -> dict[str, object]:
    return {
        "connectorId": 1,
        "transactionId": tx_id,
        "meterValue": [
            {
                "timestamp": now_iso(),
                "sampledValue": [{"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}],
            }
        ],
    }


async def test_same_station_on_two_replicas_at_once_keeps_only_the_newest(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    async with (
        open_cluster(database_url, etcd_url, prefix, tmp_path, replicas=2) as cluster,
        trio.open_nursery() as nursery,
    ):
        a, b = cluster.nodes
        # Straight to each replica's own port, no balancer: one station, two live sockets on two replicas.
        on_a = FirmwareStation(a.ocpp_url, "CP-TWICE", reconnect=False)
        await nursery.start(on_a.run)
        assert (await on_a.call("BootNotification", _BOOT))["status"] == "Accepted"
        await cluster.wait_owned("CP-TWICE", by=[a.node_id])

        on_b = FirmwareStation(b.ocpp_url, "CP-TWICE", reconnect=False)
        await nursery.start(on_b.run)
        assert "currentTime" in await on_b.call("Heartbeat", {})
        await cluster.wait_owned("CP-TWICE", by=[b.node_id], timeout=5)
        with trio.fail_after(5):
            await on_a.done.wait()  # the older connection, on replica A, was closed
        assert on_a.close_codes == [1001]
        assert on_b.connected
        assert "currentTime" in await on_b.call("Heartbeat", {})

        # And back: connecting to A again makes A the owner and closes B's connection.
        again_on_a = FirmwareStation(a.ocpp_url, "CP-TWICE", reconnect=False)
        await nursery.start(again_on_a.run)
        assert "currentTime" in await again_on_a.call("Heartbeat", {})
        with trio.fail_after(5):
            await on_b.done.wait()
        assert await cluster.owner("CP-TWICE") == a.node_id
        assert again_on_a.connected
        assert ownership_violations(await cluster.audit()) == []
        nursery.cancel_scope.cancel()


_BOOT = {"chargePointVendor": "SimCo", "chargePointModel": "Sim-1"}


async def test_new_leader_within_one_ttl_after_the_leader_dies(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    async with open_cluster(database_url, etcd_url, prefix, tmp_path) as cluster:

        async def elected() -> bool:
            return await cluster.leader() is not None

        await wait_for(elected, 5, "a leader elected")
        old = await cluster.leader()
        assert old is not None
        await cluster.kill(cluster.node(old))
        killed_at = trio.current_time()

        async def new_leader() -> bool:
            leader = await cluster.leader()
            return leader is not None and leader != old

        took = await wait_for(new_leader, TTL + 3, "a new leader", poll=0.05)
        print(f"new leader after {took:.2f}s (TTL {TTL}s)")
        assert trio.current_time() - killed_at <= TTL + 1.0
        leader = await cluster.leader()
        survivors = [n for n in cluster.nodes if n.node_id != old]
        assert leader in {n.node_id for n in survivors}

        async def survivors_agree() -> bool:
            views = []
            for node in survivors:
                async with cluster.api(node) as api:
                    views.append((await api.get("/api/v1/cluster")).json())
            return all(v["leader"] == leader and old not in {n["node_id"] for n in v["nodes"]} for v in views)

        await wait_for(survivors_agree, 2, "survivors' /api/v1/cluster shows the new leader and not the dead node")


async def _busy_station(station: FirmwareStation, tx_id: int, meter: list[int], stop: trio.Event) -> None:
    """Send MeterValues back to back until told to stop (a station in the middle of a session)."""
    while not stop.is_set():
        meter[0] += 10
        await station.call("MeterValues", _meter_values(tx_id, meter[0]))
        await trio.sleep(0.05 * station.rng.random())


async def test_sigterm_drain_moves_every_station_without_failed_calls(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    async with open_cluster(database_url, etcd_url, prefix, tmp_path) as cluster, trio.open_nursery() as nursery:
        rng = random.Random(7)
        stations = [
            FirmwareStation(cluster.ocpp_url, f"CP-DRAIN-{i}", rng=random.Random(rng.random())) for i in range(9)
        ]
        await run_stations(nursery, stations)
        stop = trio.Event()
        meters: dict[str, list[int]] = {}
        for station in stations:
            started = await station.call(
                "StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": now_iso()}
            )
            meters[station.station_id] = [0]
            nursery.start_soon(_busy_station, station, started["transactionId"], meters[station.station_id], stop)
        owners = await wait_all_owned(cluster, [s.station_id for s in stations])
        counts = {n.node_id: sum(1 for o in owners.values() if o == n.node_id) for n in cluster.nodes}
        victim = cluster.node(max(counts, key=lambda k: counts[k]))
        moved = [sid for sid, owner in owners.items() if owner == victim.node_id]
        assert moved, owners
        await trio.sleep(0.5)
        drain_started = trio.current_time()

        cluster.terminate(victim)
        code = await cluster.wait_exit(victim, 20)
        drain_took = trio.current_time() - drain_started
        assert code == 0, victim.replica.log_tail()
        after = await wait_all_owned(cluster, moved, not_by=[victim.node_id], timeout=10)
        await trio.sleep(1.0)  # calls keep flowing on the new owners
        stop.set()
        print(f"drained {len(moved)} stations from {victim.node_id} in {drain_took:.2f}s; now owned by {after}")

        # Zero failed calls: no CallError, no unanswered call on a connection the CSMS kept open. A call cut
        # off by the drain's close is resent by the station; it must not have been committed by the draining
        # replica (that would be an in-flight call the drain dropped without an answer).
        failures = {s.station_id: s.failures(drain_started) for s in stations}
        assert all(set(f) <= {"interrupted"} for f in failures.values()), failures
        audit = await cluster.audit()
        interrupted = [
            (s.station_id, a.payload["meterValue"][0]["sampledValue"][0]["value"])
            for s in stations
            for a in s.attempts
            if a.outcome == "interrupted" and a.action == "MeterValues"
        ]
        dropped = []
        for station_id, value in interrupted:
            rows = await cluster.fetch(
                "SELECT id FROM meter_values WHERE station_id = $1 AND value = $2", station_id, value
            )
            writers = {
                r["writer"] for r in audit if r["kind"] == "meter_values" and r["row_id"] in {x["id"] for x in rows}
            }
            if victim.node_id in writers:
                dropped.append((station_id, value))
        print(f"calls interrupted by the drain and resent: {len(interrupted)}")
        assert dropped == [], f"committed by the draining replica but never answered: {dropped}"
        # Zero failed calls from the stations' side: each call the close cut off was resent and acknowledged.
        acked = {
            (s.station_id, a.payload["meterValue"][0]["sampledValue"][0]["value"])
            for s in stations
            for a in s.acked
            if a.action == "MeterValues"
        }
        assert [call for call in interrupted if call not in acked] == []
        assert ownership_violations(audit) == []
        for station in stations:
            acked_values = {
                a.payload["meterValue"][0]["sampledValue"][0]["value"]
                for a in station.acked
                if a.action == "MeterValues"
            }
            rows = await cluster.fetch("SELECT value FROM meter_values WHERE station_id = $1", station.station_id)
            assert acked_values <= {r["value"] for r in rows}, station.station_id
        assert "replica draining" in victim.log() or "drain" in victim.log()
        nursery.cancel_scope.cancel()


async def test_cluster_recovers_by_itself_after_etcd_restarts(
    database_url: str, private_etcd: EtcdServer, prefix: str, tmp_path: Path
) -> None:
    await _etcd_restart_scenario(database_url, private_etcd, prefix, tmp_path)


async def _etcd_restart_scenario(database_url: str, private_etcd: EtcdServer, prefix: str, tmp_path: Path) -> None:
    async with (
        open_cluster(database_url, private_etcd.client_url, prefix, tmp_path) as cluster,
        trio.open_nursery() as nursery,
    ):
        stations = [FirmwareStation(cluster.ocpp_url, f"CP-ETCD-{i}", rng=random.Random(i)) for i in range(4)]
        await run_stations(nursery, stations)
        for station in stations:
            await station.call("Heartbeat", {})
        await wait_all_owned(cluster, [s.station_id for s in stations])

        await trio.to_thread.run_sync(private_etcd.stop)

        # Without etcd no replica can renew its lease: they fence themselves and report not ready.
        async def none_ready() -> bool:
            return all([await cluster.ready(node) is False for node in cluster.nodes])

        await wait_for(none_ready, TTL + 2, "every replica not ready without etcd")
        await trio.sleep(1.0)
        await trio.to_thread.run_sync(private_etcd.start)

        for node in cluster.nodes:
            await cluster.wait_ready(node, timeout=15)
        await wait_all_owned(cluster, [s.station_id for s in stations], timeout=15)
        for station in stations:
            assert "currentTime" in await station.call("Heartbeat", {}, within=15)
        async with SimulatedStation.connect(cluster.ocpp_url, "CP-ETCD-NEW") as fresh:
            assert (await fresh.boot())["status"] == "Accepted"
        assert ownership_violations(await cluster.audit()) == []
        nursery.cancel_scope.cancel()


async def test_cluster_recovers_by_itself_after_postgres_restarts(
    database_url: str, postgres_server: PostgresServer, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    async with open_cluster(database_url, etcd_url, prefix, tmp_path) as cluster, trio.open_nursery() as nursery:
        stations = [FirmwareStation(cluster.ocpp_url, f"CP-PG-{i}", rng=random.Random(i)) for i in range(3)]
        await run_stations(nursery, stations)
        tx: dict[str, int] = {}
        for station in stations:
            started = await station.call(
                "StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 100, "timestamp": now_iso()}
            )
            tx[station.station_id] = started["transactionId"]
        stop = trio.Event()
        meters = {s.station_id: [100] for s in stations}
        for station in stations:
            nursery.start_soon(_busy_station, station, tx[station.station_id], meters[station.station_id], stop)
        await trio.sleep(0.5)
        outage_started = trio.current_time()

        await trio.to_thread.run_sync(postgres_server.stop)
        await trio.sleep(2.0)
        await trio.to_thread.run_sync(postgres_server.start)
        recovered_at = trio.current_time()

        for node in cluster.nodes:
            await cluster.wait_ready(node, timeout=15)
        # Calls keep succeeding after the outage, on their own.
        progress = {s.station_id: len(s.acked) for s in stations}

        async def moving() -> bool:
            return all(len(s.acked) >= progress[s.station_id] + 3 for s in stations)

        await wait_for(moving, 15, "stations' calls acknowledged again")
        stop.set()
        for station in stations:
            await station.call(
                "StopTransaction",
                {"transactionId": tx[station.station_id], "meterStop": 5000, "timestamp": now_iso()},
                within=15,
            )
        failed = sum(sum(s.failures(outage_started).values()) for s in stations)
        outage = recovered_at - outage_started
        print(f"Postgres outage of {outage:.1f}s: {failed} failed attempts, all resent until acknowledged")
        assert failed > 0, "the outage should have made some calls fail (else this test tests nothing)"

        # Nothing acknowledged is lost.
        for station in stations:
            acked = {
                a.payload["meterValue"][0]["sampledValue"][0]["value"]
                for a in station.acked
                if a.action == "MeterValues"
            }
            rows = await cluster.fetch("SELECT value FROM meter_values WHERE station_id = $1", station.station_id)
            assert acked <= {r["value"] for r in rows}, station.station_id
            energy = await cluster.fetch("SELECT energy_wh FROM transactions WHERE id = $1", tx[station.station_id])
            assert energy[0]["energy_wh"] == 4900
        nursery.cancel_scope.cancel()
