"""Bounded chaos: random SIGKILL, SIGTERM, SIGSTOP/SIGCONT and restarts of replicas under a charging fleet.

A fleet of simulated stations charges continuously (StartTransaction, periodic MeterValues, StopTransaction)
through the OCPP balancer while a chaos monkey disturbs one replica at a time (always leaving one untouched):
kill -9 then restart, SIGTERM (drain) then restart, or freeze with SIGSTOP for 1-5 s (sometimes past the 2 s
lease) then SIGCONT. Stations behave like firmware: reconnect with backoff, resend every unanswered call with a
new message id and the same payload until it is acknowledged, and keep a local record of what was acknowledged.

After the chaos window every replica is brought back, the stations finish their sessions, and the invariants
are checked against Postgres:

1. Never two replicas serving one station at once. Evidence: the harness's audit trail, written by database
   triggers, records for every fenced write (transactions, meter values, status history) the replica that made it
   and the station's fence row read inside that same transaction, plus every fence change. Fence tokens are
   allocated by Postgres per accepted claim, so they only grow; the product holds the fence row locked (FOR
   SHARE) until commit, so audit order is the per-station serialisation order. `ownership_violations` then
   requires: each write came from the replica holding the newest fence at that instant, and no write ever
   followed (in that order) a newer claim than its own. A stale owner still serving after a takeover would show
   up as a write by a non-holder or under an older fence. Each acknowledged call the station made after a
   reconnect is such a write, so "acked calls came from the owner with the newest token" is covered.
2. Every acknowledged StartTransaction has exactly one transactions row (found by station and meterStart,
   which is unique per station here), with the transactionId the station was given; no other rows exist.
3. No acknowledged meter value is missing.
4. For every acknowledged StopTransaction the stored meter_stop and energy (meter_stop - meter_start) equal
   what the station reported, and so do the per-station energy totals.
5. No replica exited unexpectedly (a crash is only what the monkey did itself).
6. The outbox matches the committed state: every transaction row has exactly one `transaction.started` event
   and every stopped one exactly one `transaction.ended` event with its meter stop, no such event names a
   transaction that does not exist, the samples of the `meter_values.recorded` events are exactly the stored
   meter values (retried messages add none), and per station a transaction's events follow its start.

The seed is printed; rerun with CSMS_CHAOS_SEED=<seed> (and CSMS_CHAOS_SECONDS to change the window).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from replica_cluster import (
    FirmwareStation,
    Node,
    ReplicaCluster,
    open_cluster,
    ownership_violations,
    run_stations,
)

from devcluster.station import now_iso

pytestmark = pytest.mark.cluster

SEED = int(os.environ.get("CSMS_CHAOS_SEED", "20261127"))
CHAOS_SECONDS = float(os.environ.get("CSMS_CHAOS_SECONDS", "60"))
STATIONS = 30
CALL_WITHIN = 60.0  # a call not acknowledged within this long fails the test (liveness)


@dataclass
class Session:
    """One transaction as the station saw it."""

    meter_start: int
    start_ts: str
    tx_id: int | None = None
    meter_values: list[tuple[str, int]] = field(default_factory=list)  # acknowledged (timestamp, Wh)
    meter_stop: int | None = None  # set once the StopTransaction was acknowledged


@dataclass
class Fleet:
    stations: list[FirmwareStation]
    sessions: dict[str, list[Session]]


async def _drive(station: FirmwareStation, sessions: list[Session], rng: random.Random, stop: trio.Event) -> None:
    """Charge in a loop until told to stop; a session in progress is always finished."""
    meter = rng.randrange(0, 100_000, 10)
    await station.call(
        "BootNotification", {"chargePointVendor": "SimCo", "chargePointModel": "Chaos"}, within=CALL_WITHIN
    )
    while not stop.is_set():
        session = Session(meter_start=meter, start_ts=now_iso())
        sessions.append(session)
        started = await station.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": "CHAOS", "meterStart": meter, "timestamp": session.start_ts},
            within=CALL_WITHIN,
        )
        session.tx_id = started["transactionId"]
        for _ in range(rng.randint(2, 5)):
            await trio.sleep(rng.uniform(0.2, 0.6))
            meter += rng.randint(1, 50)
            ts = now_iso()
            await station.call(
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": session.tx_id,
                    "meterValue": [
                        {"timestamp": ts, "sampledValue": [{"value": str(meter), "unit": "Wh"}]},
                    ],
                },
                within=CALL_WITHIN,
            )
            session.meter_values.append((ts, meter))
        meter += rng.randint(1, 20)
        await station.call(
            "StopTransaction",
            {"transactionId": session.tx_id, "meterStop": meter, "timestamp": now_iso(), "reason": "EVDisconnected"},
            within=CALL_WITHIN,
        )
        session.meter_stop = meter
        await trio.sleep(rng.uniform(0.1, 0.5))


class Monkey:
    """Disturbs one replica at a time (never the last healthy one) and brings it back."""

    def __init__(self, cluster: ReplicaCluster, rng: random.Random) -> None:
        self.cluster = cluster
        self.rng = rng
        self.disturbed: set[str] = set()
        self.actions: list[str] = []
        self.unexpected_exits: list[str] = []
        self._started = trio.current_time()

    def _note(self, text: str) -> None:
        line = f"t={trio.current_time() - self._started:6.2f}s {text}"
        self.actions.append(line)
        print("chaos:", line, flush=True)

    async def run(self, seconds: float) -> None:
        until = trio.current_time() + seconds
        async with trio.open_nursery() as nursery:
            while trio.current_time() < until:
                await trio.sleep(self.rng.uniform(1.0, 3.0))
                await self._check_crashes()
                healthy = [n for n in self.cluster.nodes if n.node_id not in self.disturbed]
                if len(healthy) <= 1:
                    continue
                node = self.rng.choice(healthy)
                action = self.rng.choice(["kill", "terminate", "pause"])
                self.disturbed.add(node.node_id)
                nursery.start_soon(self._disturb, node, action, self.rng.uniform(1.0, 5.0))
        await self._check_crashes()

    async def _check_crashes(self) -> None:
        for node in self.cluster.nodes:
            if node.node_id not in self.disturbed and not node.running:
                code = node.replica.proc.returncode if node.replica.proc else None
                self._note(f"UNEXPECTED: {node.node_id} exited with {code}; restarting it")
                self.unexpected_exits.append(f"{node.node_id} exited with {code}:\n{node.replica.log_tail(25)}")
                self.disturbed.add(node.node_id)
                await self.cluster.restart(node)
                self.disturbed.discard(node.node_id)

    async def _disturb(self, node: Node, action: str, hold: float) -> None:
        self._note(f"{action} {node.node_id} for {hold:.1f}s")
        if action == "kill":
            await self.cluster.kill(node)
            await trio.sleep(hold)
        elif action == "terminate":
            self.cluster.terminate(node)
            code = await self.cluster.wait_exit(node, 30)
            if code != 0:
                self._note(f"UNEXPECTED: {node.node_id} drained with exit code {code}")
                self.unexpected_exits.append(f"{node.node_id} drain exit {code}:\n{node.replica.log_tail(25)}")
            await trio.sleep(hold)
        else:
            self.cluster.pause(node)
            await trio.sleep(hold)
            self.cluster.resume(node)
        with trio.fail_after(40):
            while not await self.cluster.ready(node):
                if not node.running:
                    if action == "pause":
                        code = node.replica.proc.returncode if node.replica.proc else None
                        self._note(f"UNEXPECTED: {node.node_id} died after SIGCONT (exit {code})")
                        self.unexpected_exits.append(
                            f"{node.node_id} died after SIGCONT ({code}):\n{node.replica.log_tail(25)}"
                        )
                    await self.cluster.restart(node)
                await trio.sleep(0.1)
        self._note(f"{node.node_id} back")
        self.disturbed.discard(node.node_id)


async def test_chaos_keeps_ownership_exclusive_and_no_acked_data_lost(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    print(f"chaos seed {SEED} (CSMS_CHAOS_SEED), {CHAOS_SECONDS:.0f}s window, {STATIONS} stations")
    rng = random.Random(SEED)
    async with open_cluster(database_url, etcd_url, prefix, tmp_path) as cluster:
        fleet = Fleet(
            [
                FirmwareStation(cluster.ocpp_url, f"CP-CHAOS-{i:02d}", rng=random.Random(rng.random()))
                for i in range(STATIONS)
            ],
            {},
        )
        monkey = Monkey(cluster, random.Random(rng.random()))
        stop = trio.Event()
        async with trio.open_nursery() as links:
            await run_stations(links, fleet.stations)
            async with trio.open_nursery() as drivers:
                for station in fleet.stations:
                    sessions = fleet.sessions.setdefault(station.station_id, [])
                    drivers.start_soon(_drive, station, sessions, random.Random(rng.random()), stop)
                chaos_started = trio.current_time()
                await monkey.run(CHAOS_SECONDS)
                chaos_took = trio.current_time() - chaos_started
                for node in cluster.nodes:  # everyone back before the fleet winds down
                    await cluster.wait_ready(node, timeout=30)
                stop.set()
            links.cancel_scope.cancel()

        # The chaos really ran its whole window (nothing cut it short silently).
        assert chaos_took >= CHAOS_SECONDS, f"chaos ended after {chaos_took:.1f}s"
        audit = await cluster.audit()
        problems = await _check_invariants(cluster, fleet, audit)
        _print_summary(fleet, monkey, audit)
    assert problems == [], "\n".join(problems[:50])
    exits = monkey.unexpected_exits
    assert exits == [], "\n\n".join(exits)


async def _check_invariants(cluster: ReplicaCluster, fleet: Fleet, audit: list[dict[str, Any]]) -> list[str]:
    problems = ownership_violations(audit)
    rows = await cluster.fetch(
        "SELECT id, station_id, meter_start, meter_stop, energy_wh FROM transactions WHERE station_id LIKE 'CP-CHAOS-%'"
    )
    by_start: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        by_start.setdefault((row["station_id"], row["meter_start"]), []).append(dict(row))
    samples = await cluster.fetch(
        "SELECT station_id, transaction_id, value FROM meter_values WHERE station_id LIKE 'CP-CHAOS-%'"
    )
    stored_samples = {(r["station_id"], r["transaction_id"], r["value"]) for r in samples}

    acked_starts = 0
    for station_id, sessions in fleet.sessions.items():
        energy_reported = energy_stored = 0
        for s in sessions:
            if s.tx_id is None:
                continue
            acked_starts += 1
            found = by_start.get((station_id, s.meter_start), [])
            if len(found) != 1 or found[0]["id"] != s.tx_id:
                problems.append(f"{station_id}: start at {s.meter_start} (tx {s.tx_id}) stored as {found}")
                continue
            for ts, wh in s.meter_values:
                if (station_id, s.tx_id, str(wh)) not in stored_samples:
                    problems.append(f"{station_id}: acked meter value {wh} Wh at {ts} of tx {s.tx_id} missing")
            if s.meter_stop is not None:
                row = found[0]
                if row["meter_stop"] != s.meter_stop or row["energy_wh"] != s.meter_stop - s.meter_start:
                    problems.append(f"{station_id}: tx {s.tx_id} stopped at {s.meter_stop} but stored {row}")
                energy_reported += s.meter_stop - s.meter_start
                energy_stored += row["energy_wh"] or 0
        if energy_reported != energy_stored:
            problems.append(f"{station_id}: energy reported {energy_reported} Wh, stored {energy_stored} Wh")
    if len(rows) != acked_starts:
        problems.append(f"{len(rows)} transaction rows for {acked_starts} acknowledged starts")
    return problems + await _check_outbox(cluster)


async def _check_outbox(cluster: ReplicaCluster) -> list[str]:
    problems = []
    events = await cluster.fetch(
        "SELECT station_id, type, payload FROM outbox WHERE station_id LIKE 'CP-CHAOS-%' ORDER BY txid, seq"
    )
    transactions = {
        r["id"]: r
        for r in await cluster.fetch(
            "SELECT id, meter_stop, stop_received_at FROM transactions WHERE station_id LIKE 'CP-CHAOS-%'"
        )
    }
    started: dict[int, int] = {}
    ended: dict[int, list[int]] = {}
    samples: dict[str, int] = {}
    for e in events:
        data, kind = e["payload"], e["type"].removeprefix("csms.")
        tx = data.get("transaction_id")
        if kind == "transaction.started.v1":
            started[tx] = started.get(tx, 0) + 1
        elif kind in ("transaction.updated.v1", "transaction.ended.v1") and tx not in started:
            problems.append(f"{e['station_id']}: {kind} of tx {tx} before (or without) its start")
        if kind == "transaction.ended.v1":
            ended.setdefault(tx, []).append(data["meter_stop_wh"])
        if kind == "meter_values.recorded.v1":
            samples[e["station_id"]] = samples.get(e["station_id"], 0) + len(data["samples"])
    for tx_id, row in transactions.items():
        if started.get(tx_id) != 1:
            problems.append(f"tx {tx_id}: {started.get(tx_id, 0)} transaction.started events")
        if row["stop_received_at"] is not None and ended.get(tx_id) != [row["meter_stop"]]:
            problems.append(f"tx {tx_id} stopped at {row['meter_stop']}: ended events {ended.get(tx_id)}")
    problems += [f"event for unknown tx {tx}" for tx in set(started) | set(ended) if tx not in transactions]
    stored = {
        r["station_id"]: r["n"]
        for r in await cluster.fetch(
            "SELECT station_id, count(*) AS n FROM meter_values WHERE station_id LIKE 'CP-CHAOS-%' GROUP BY 1"
        )
    }
    if samples != stored:
        problems.append(f"meter values in events {samples} != stored {stored}")
    return problems


def _print_summary(fleet: Fleet, monkey: Monkey, audit: list[dict[str, Any]]) -> None:
    sessions = [s for ss in fleet.sessions.values() for s in ss]
    failures: dict[str, int] = {}
    for station in fleet.stations:
        for outcome, n in station.failures().items():
            failures[outcome] = failures.get(outcome, 0) + n
    print(
        f"chaos summary (seed {SEED}): {len(monkey.actions)} events; "
        f"{sum(len(s.acked) for s in fleet.stations)} acked calls; "
        f"{sum(1 for s in sessions if s.meter_stop is not None)} completed transactions; "
        f"{sum(s.connections for s in fleet.stations)} connections; "
        f"{sum(1 for r in audit if r['kind'] == 'fence')} claims recorded; failed attempts {failures}"
    )
