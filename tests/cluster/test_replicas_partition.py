"""Partitions and freezes with real replica processes: self-fencing, takeover, and no stale write landing.

A replica is cut off from etcd by cutting the TCP proxy between it and etcd (it still reaches Postgres and its
stations), or frozen with SIGSTOP for longer than its lease. Either way another replica must take its stations
over, and nothing it does afterwards may reach Postgres for a station it no longer owns: checked against the
audit trail (who wrote what under which fence) that the harness records with database triggers.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
import trio
from replica_cluster import (
    FirmwareStation,
    open_cluster,
    ownership_violations,
    run_stations,
    wait_all_owned,
    wait_for,
)

from csms.devtools.station import now_iso

pytestmark = pytest.mark.cluster

TTL = 2.0


def _meter_values(tx_id: int, wh: int, timestamp: str | None = None) -> dict[str, object]:
    return {
        "connectorId": 1,
        "transactionId": tx_id,
        "meterValue": [
            {
                "timestamp": timestamp or now_iso(),
                "sampledValue": [{"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}],
            }
        ],
    }


async def _keep_metering(station: FirmwareStation, tx_id: int) -> None:
    wh = 0
    while True:
        wh += 10
        await station.call("MeterValues", _meter_values(tx_id, wh), within=30)
        await trio.sleep(0.1)


async def test_replica_cut_from_etcd_fences_itself_and_its_stations_move(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    async with open_cluster(database_url, etcd_url, prefix, tmp_path) as cluster:
        async with trio.open_nursery() as nursery:
            stations = [FirmwareStation(cluster.ocpp_url, f"CP-CUT-{i}", rng=random.Random(i)) for i in range(6)]
            await run_stations(nursery, stations)
            for station in stations:
                started = await station.call(
                    "StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": now_iso()}
                )
                nursery.start_soon(_keep_metering, station, started["transactionId"])
            owners = await wait_all_owned(cluster, [s.station_id for s in stations])
            victim = cluster.node(max(set(owners.values()), key=list(owners.values()).count))
            theirs = {sid for sid, owner in owners.items() if owner == victim.node_id}
            by_id = {s.station_id: s for s in stations}
            connections_before = {sid: by_id[sid].connections for sid in theirs}

            cut_at = trio.current_time()
            cluster.cut_etcd(victim)

            async def fenced() -> bool:
                return await cluster.ready(victim) is False

            took = await wait_for(fenced, TTL + 1.0, f"{victim.node_id} reports not ready once cut off", poll=0.05)
            print(f"{victim.node_id} fenced itself {took:.2f}s after the cut (TTL {TTL}s)")

            # Its stations were closed and came back through the balancer to the others.
            moved = await wait_all_owned(cluster, theirs, not_by=[victim.node_id], timeout=TTL + 8)
            for sid in theirs:
                assert by_id[sid].connections > connections_before[sid], sid

            async def flowing() -> bool:
                return all(any(a.acked_at > cut_at + TTL + 1 for a in by_id[sid].acked) for sid in theirs)

            await wait_for(flowing, 10, "moved stations acknowledged again")
            assert (await cluster.metric(victim, "csms_cluster_lease_up")) == 0

            # Healed: the replica rejoins with a fresh lease by itself.
            cluster.restore_etcd(victim)
            await cluster.wait_ready(victim, timeout=10)
            nursery.cancel_scope.cancel()

        audit = await cluster.audit()
        assert ownership_violations(audit) == []
        # After each moved station's new claim, only its new owner wrote for it.
        for sid in theirs:
            rows = [r for r in audit if r["station_id"] == sid]
            claimed = next(r["seq"] for r in rows if r["kind"] == "fence" and r["writer"] == moved[sid])
            late = [r for r in rows if r["seq"] > claimed and r["kind"] != "fence" and r["writer"] == victim.node_id]
            assert late == [], f"stale writes by {victim.node_id} for {sid}: {late}"


async def test_frozen_replica_cannot_write_after_its_station_moved(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    """SIGSTOP the owner for longer than its lease with a MeterValues already in its socket buffer; the station
    reconnects to another replica. When the frozen replica wakes up it must not commit that stale call, nor
    take the station back."""
    await _frozen_replica_scenario(database_url, etcd_url, prefix, tmp_path)


async def _frozen_replica_scenario(database_url: str, etcd_url: str, prefix: str, tmp_path: Path) -> None:
    async with open_cluster(database_url, etcd_url, prefix, tmp_path, replicas=2) as cluster:
        async with trio.open_nursery() as nursery:
            a, b = cluster.nodes
            on_a = FirmwareStation(a.ocpp_url, "CP-FROZEN", reconnect=False)
            await nursery.start(on_a.run)
            started = await on_a.call(
                "StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": now_iso()}
            )
            tx_id = started["transactionId"]
            await on_a.call("MeterValues", _meter_values(tx_id, 100))
            assert await cluster.owner("CP-FROZEN") == a.node_id

            cluster.pause(a)
            frame = [2, "stale-1", "MeterValues", _meter_values(tx_id, 200)]
            assert on_a.current is not None
            await on_a.current.send_raw(orjson.dumps(frame).decode())  # lands in the frozen replica's socket buffer

            on_b = FirmwareStation(b.ocpp_url, "CP-FROZEN", reconnect=False)
            await nursery.start(on_b.run)
            await on_b.call("MeterValues", _meter_values(tx_id, 300))
            assert await cluster.owner("CP-FROZEN") == b.node_id
            await trio.sleep(TTL + 1.0)  # A's lease has expired in etcd by now

            cluster.resume(a)
            with trio.fail_after(5):
                await on_a.done.wait()  # the woken replica drops its stale connection
            await cluster.wait_ready(a, timeout=10)  # and rejoins with a fresh lease
            await trio.sleep(1.0)
            print(
                f"fence rejections on the woken replica: {await cluster.metric(a, 'csms_fence_rejections_total'):.0f}"
            )

            # A never got the station back, and B still serves it.
            assert await cluster.owner("CP-FROZEN") == b.node_id
            assert on_b.connected
            await on_b.call("MeterValues", _meter_values(tx_id, 400))
            nursery.cancel_scope.cancel()

        values = {
            r["value"] for r in await cluster.fetch("SELECT value FROM meter_values WHERE station_id = $1", "CP-FROZEN")
        }
        assert values == {"100", "300", "400"}, "the stale MeterValues (200) must not have been stored"
        audit = await cluster.audit()
        assert ownership_violations(audit) == []
        b_claim = max(r["seq"] for r in audit if r["kind"] == "fence" and r["writer"] == b.node_id)
        assert [r for r in audit if r["seq"] > b_claim and r["writer"] == a.node_id] == []
