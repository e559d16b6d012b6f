"""Site load management: reallocation latency and sites per replica at 50 stations each.

One replica, sites of 50 simulated stations (devcluster.charging: they hold the profiles they are sent and
report Current.Import). For each site count, sessions start and stop at random on every station (mean session
``--session`` seconds) for ``--seconds``; measured per session start: the time until the new station holds its
TxProfile (raises are sent after every reduction of the round is confirmed, so this is the time until all the
affected stations hold their new profiles); and the replica's CPU. The highest sum of limits in force is checked
against each site's limit throughout.

    python -m benchmarks.bench_sites --sites 1,4,8 --seconds 60
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio

from benchmarks import harness
from devcluster.charging import ChargingStation, SiteSampler, drive_sessions

STATIONS_PER_SITE = 50
ROUND_METRIC = "csms_site_round_duration_seconds"
LIMIT = 50 * 12.0  # A: 12 A a station on average, so demand exceeds the limit when most charge


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


async def run_sites(node: Any, count: int, seconds: float, session: float, report: float) -> dict[str, Any]:
    rng = random.Random(count)
    sites = {
        f"bench-{count}-{n}": [
            ChargingStation(f"B{count}S{n}-{i:02d}", report_interval=report) for i in range(STATIONS_PER_SITE)
        ]
        for n in range(count)
    }
    samplers = {site: SiteSampler(stations, LIMIT) for site, stations in sites.items()}
    url = f"ws://127.0.0.1:{node.ocpp_port}/ocpp"
    headers = {"Authorization": f"Bearer {harness.BEARER}"}
    base = f"http://127.0.0.1:{node.api_port}"
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as api, trio.open_nursery() as nursery:
        for stations in sites.values():
            for station in stations:
                await nursery.start(station.run, url)
        for site, stations in sites.items():
            body = {"limit": LIMIT, "stations": [s.station_id for s in stations]}
            assert (await api.put(f"/api/v1/sites/{site}", json=body)).status_code == 201
        with trio.fail_after(120):
            while not all(s.profiles for stations in sites.values() for s in stations):
                await trio.sleep(0.1)
        cpu = harness.CpuMeter({"replica": node.proc.pid, "simulator": os.getpid()})
        cpu.start()
        for sampler in samplers.values():
            nursery.start_soon(sampler.run, 0.2)
        for stations in sites.values():
            for station in stations:
                timing = {"idle": (session / 6, session / 3), "charging": (session / 2, session * 1.5)}
                nursery.start_soon(partial(drive_sessions, station, random.Random(rng.random()), **timing))
        rounds_before = await trio.to_thread.run_sync(harness.metric_sum_count, node, ROUND_METRIC)
        await trio.sleep(seconds)
        used = cpu.stop()
        rounds_after = await trio.to_thread.run_sync(harness.metric_sum_count, node, ROUND_METRIC)
        nursery.cancel_scope.cancel()
    latency = [x for stations in sites.values() for s in stations for x in s.allocation_latency]
    utilisation = [u for sampler in samplers.values() for u in sampler.utilisation]
    return {
        "sites": count,
        "stations": count * STATIONS_PER_SITE,
        "sessions_started": len(latency),
        "latency_p50_s": round(_pct(latency, 0.5), 3),
        "latency_p95_s": round(_pct(latency, 0.95), 3),
        "replica_cpu_percent": used["replica"],
        "simulator_cpu_percent": used["simulator"],
        "rounds": int(rounds_after[1] - rounds_before[1]),
        "round_mean_s": round((rounds_after[0] - rounds_before[0]) / max(1.0, rounds_after[1] - rounds_before[1]), 3),
        "highest_sum_over_limit_a": round(max(s.highest for s in samplers.values()) - LIMIT, 1),
        "utilisation_mean": round(statistics.fmean(utilisation), 3) if utilisation else None,
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    with harness.postgres() as pg, tempfile.TemporaryDirectory() as logs:
        for count in [int(c) for c in args.sites.split(",")]:
            settings = {"site_interval": str(args.interval), "db_pool_size": str(args.pool)}
            with harness.replica(pg.url(), Path(logs), **settings) as node:
                row = await run_sites(node, count, args.seconds, args.session, args.report)
                print(row, flush=True)
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="1,4,8", help="site counts to run, comma-separated")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per site count")
    parser.add_argument("--session", type=float, default=60.0, help="mean charging session (s)")
    parser.add_argument("--report", type=float, default=10.0, help="meter value interval of the stations (s)")
    parser.add_argument("--interval", type=float, default=5.0, help="CSMS_SITE_INTERVAL")
    parser.add_argument("--pool", type=int, default=8, help="CSMS_DB_POOL_SIZE")
    args = parser.parse_args()
    rows = trio.run(main_async, args)
    headers = list(rows[0])
    markdown = (
        "# Site load management\n\n"
        f"{STATIONS_PER_SITE} stations a site, limit {LIMIT:g} A, mean session {args.session:g} s, meter values every"
        f" {args.report:g} s, one replica with {args.pool} database connections; latency = session start until the"
        " new station holds its TxProfile (after every reduction of the round was confirmed).\n\n"
        + harness.table(headers, [list(r.values()) for r in rows])
    )
    json_path, md_path = harness.write_results("sites", {"machine": harness.machine(), "rows": rows}, markdown)
    print(markdown, f"\n{json_path}\n{md_path}")


if __name__ == "__main__":
    main()
