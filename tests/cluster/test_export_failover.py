"""Exporter failover with real replica processes: the replica exporting to JetStream is SIGKILLed under load;
another takes the sink's lease within about one TTL and resumes from the durable cursor. Nothing is skipped,
and the re-published tail is dropped by JetStream (message id = event id): the stream holds each event once,
in per-station order."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio
from replica_cluster import FirmwareStation, ReplicaCluster, open_cluster, run_stations, wait_for

from devcluster.nats import NatsServer
from devcluster.station import now_iso

pytestmark = pytest.mark.cluster

SINK_METRIC = "csms_export_active"


async def exporter_of(cluster: ReplicaCluster) -> list[str]:
    holders = []
    for node in cluster.nodes:
        if node.running and await cluster.metric(node, SINK_METRIC) == 1:
            holders.append(node.node_id)
    return holders


async def meter_loop(station: FirmwareStation, stop: trio.Event) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        sample = {"value": str(n), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        await station.call(
            "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": now_iso(), "sampledValue": [sample]}]}
        )
        await trio.sleep(0.02)


async def test_exporter_killed_under_load_is_taken_over_without_gaps_or_duplicates(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    with NatsServer() as nats_server:
        env = {"CSMS_EXPORT_NATS_URL": nats_server.url, "CSMS_EXPORT_POLL_MS": "20", "CSMS_EXPORT_BATCH": "50"}
        async with open_cluster(database_url, etcd_url, prefix, tmp_path, replicas=2, env=env) as cluster:
            holders: list[str] = []

            async def one_exporter() -> bool:
                nonlocal holders
                holders = await exporter_of(cluster)
                return len(holders) == 1

            await wait_for(one_exporter, 15, "one active NATS exporter")
            victim = cluster.node(holders[0])
            stop = trio.Event()
            stations = [FirmwareStation(cluster.ocpp_url, f"CP-EX{i}", rng=random.Random(i)) for i in range(4)]
            async with trio.open_nursery() as nursery:
                await run_stations(nursery, stations)
                for station in stations:
                    nursery.start_soon(meter_loop, station, stop)

                async def exporting() -> bool:
                    return await cluster.metric(victim, "csms_events_exported_total") > 20

                await wait_for(exporting, 15, "the first exporter publishing")
                await cluster.kill(victim)

                async def taken_over() -> bool:
                    return await exporter_of(cluster) not in ([], [victim.node_id])

                took = await wait_for(taken_over, 15, "another replica exporting")
                await trio.sleep(1.0)  # more traffic after the takeover
                stop.set()
                nursery.cancel_scope.deadline = trio.current_time() + 10
            survivor = next(n for n in cluster.nodes if n is not victim)

            async def caught_up() -> bool:
                # The stations' disconnects are events too (written with their presence rows as the survivor
                # sees them leave): wait for them, or they land between the two reads below ("invented").
                connected = await cluster.fetch(
                    "SELECT count(*) AS n FROM station_presence"
                    " WHERE station_id LIKE 'CP-EX%' AND disconnected_at IS NULL"
                )
                if int(connected[0]["n"]):
                    return False
                rows = await cluster.fetch(
                    "SELECT count(*) AS n FROM outbox o, export_cursors c WHERE (o.txid, o.seq) > (c.txid, c.seq)"
                )
                return int(rows[0]["n"]) == 0 and await cluster.metric(survivor, "csms_events_exported_total") > 0

            await wait_for(caught_up, 20, "the survivor's exporter caught up")
            outbox = await cluster.fetch(
                "SELECT id::text AS id, station_id, txid::text || '-' || seq AS cursor, type FROM outbox"
                " ORDER BY txid, seq"
            )
            messages = await trio.to_thread.run_sync(nats_server.messages, "CSMS_EVENTS")
            stream_ids = [h["Nats-Msg-Id"] for _, h, _ in messages]
            assert len(stream_ids) == len(set(stream_ids)), "JetStream kept a duplicate"
            assert set(stream_ids) == {r["id"] for r in outbox}, "an event was skipped (or invented)"
            position = {event_id: i for i, event_id in enumerate(stream_ids)}
            published_at = {h["Nats-Msg-Id"]: h.get("Ce-Sequence") for _, h, _ in messages}
            for station in {r["station_id"] for r in outbox}:
                expected = [r["id"] for r in outbox if r["station_id"] == station]
                # On failure: each event's stream position, its cursor when published and now, and its type (a
                # cursor that changed since publishing, or a stream position out of cursor order, tells which).
                trail = [
                    (position[r["id"]], published_at[r["id"]], r["cursor"], r["type"])
                    for r in outbox
                    if r["station_id"] == station
                ]
                assert sorted(expected, key=position.__getitem__) == expected, f"{station} out of order: {trail}"
            print(f"exporter takeover after SIGKILL: {took:.2f}s")
            assert took <= 2.0 * 2 + 2.0  # one TTL (2 s) for the lease, plus scrape and start-up slack
