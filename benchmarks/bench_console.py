"""Operator console page timings at fleet scale: p50/p95 per page with 20,000 registered stations and traffic.

Seeds one replica's database with N stations (varied vendors, models, firmware), presence and connection
history, connector states (some charging, some faulted), historical and active sessions with meter values,
id tags and commands; then, while simulated stations send status and meter values, a signed-in console client
requests every page in turn (one at a time, as an operator's browser would) and records each answer's latency.

    python -m benchmarks.bench_console --stations 20000 --requests 60 --traffic 200
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import trio

from benchmarks import harness
from devcluster.station import SimulatedStation

SEED = """
INSERT INTO stations (id, vendor, model, firmware_version, last_boot_status, last_boot_at, last_seen_at)
SELECT 'CP-' || lpad(i::text, 6, '0'), 'Vendor' || (i % 7), 'Model-' || (i % 23), '1.' || (i % 11) || '.0', 'Accepted',
       now() - make_interval(hours => i % 200), now() - make_interval(secs => i % 3600)
FROM generate_series(1, $1) i ON CONFLICT DO NOTHING;
"""
SEED_MORE = [
    """INSERT INTO station_presence (station_id, node_id, connection_id, protocol, connected_at, disconnected_at)
       SELECT id, CASE WHEN random() < 0.5 THEN 'bench-a' ELSE 'bench-b' END, 'seed-' || id,
              CASE WHEN random() < 0.8 THEN 'ocpp1.6' ELSE 'ocpp2.0.1' END, now() - interval '1 hour',
              CASE WHEN random() < 0.1 THEN now() - make_interval(mins => (random() * 600)::int) END
       FROM stations ON CONFLICT DO NOTHING""",
    """INSERT INTO station_connections (station_id, node_id, connection_id, protocol, connected_at)
       SELECT station_id, node_id, connection_id, protocol, now() - make_interval(secs => (random() * 3000)::int)
       FROM station_presence ON CONFLICT DO NOTHING""",
    """INSERT INTO connector_status (station_id, connector_id, status, error_code, received_at)
       SELECT s.id, c, CASE WHEN random() < 0.10 THEN 'Charging' WHEN random() < 0.02 THEN 'Faulted'
                            ELSE 'Available' END, 'NoError', now()
       FROM stations s, generate_series(1, 2) c ON CONFLICT DO NOTHING""",
    """INSERT INTO connector_status_history (station_id, connector_id, status, error_code, received_at)
       SELECT station_id, connector_id, status, error_code, now() - make_interval(secs => (random() * 86400)::int)
       FROM connector_status, generate_series(1, 5)""",
    """INSERT INTO transactions (station_id, connector_id, id_tag, id_tag_status, meter_start, start_timestamp,
           start_received_at, meter_stop, stop_timestamp, stop_received_at, stop_reason)
       SELECT 'CP-' || lpad((1 + i % $1)::text, 6, '0'), 1, 'TAG' || (i % 500), 'Accepted', 0,
              now() - make_interval(mins => i % 5000), now() - make_interval(mins => i % 5000),
              CASE WHEN i % 20 <> 0 THEN 5000 + i % 30000 END,
              CASE WHEN i % 20 <> 0 THEN now() - make_interval(mins => i % 5000 - 30) END,
              CASE WHEN i % 20 <> 0 THEN now() - make_interval(mins => i % 5000 - 30) END,
              CASE WHEN i % 20 <> 0 THEN 'Local' END
       FROM generate_series(1, $1 * 5) i ON CONFLICT DO NOTHING""",
    """INSERT INTO meter_values (station_id, connector_id, transaction_id, station_timestamp, received_at, source,
           measurand, phase, unit, context, location, format, value)
       SELECT t.station_id, 1, t.id, t.start_timestamp + make_interval(mins => k), now(), 'MeterValues',
              'Energy.Active.Import.Register', '', 'Wh', 'Sample.Periodic', 'Outlet', 'Raw', (k * 180)::text
       FROM transactions t, generate_series(1, 30) k WHERE t.id % 10 = 0 ON CONFLICT DO NOTHING""",
    """INSERT INTO id_tags (id_tag, status, parent_id_tag)
       SELECT 'TAG' || i, 'Accepted', 'GROUP' || (i % 10) FROM generate_series(0, 499) i ON CONFLICT DO NOTHING""",
    """INSERT INTO commands (station_id, action, payload, status, requested_by, completed_at)
       SELECT 'CP-' || lpad((1 + i % $1)::text, 6, '0'), 'Reset', '{"type": "Soft"}', 'completed', 'token:admin', now()
       FROM generate_series(1, 5000) i""",
    "ANALYZE",
]


async def seed(database_url: str, stations: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(SEED.replace("$1", str(stations)))
        for sql in SEED_MORE:
            await conn.execute(sql.replace("$1", str(stations)))
    finally:
        await conn.close()


def pages(stations: int) -> dict[str, str]:
    middle = f"CP-{stations // 2:06d}"
    return {
        "overview": "/ui/",
        "stations": "/ui/stations",
        "stations search": "/ui/stations?q=CP-0123",
        "stations filtered": "/ui/stations?state=charging&vendor=Vendor3&sort=last_seen&dir=desc",
        "stations deep page": "/ui/stations?offset=15000&size=50",
        "station detail": f"/ui/stations/{middle}",
        "sessions": "/ui/sessions",
        "sessions filtered": "/ui/sessions?id_tag=TAG7&active=no",
        "session detail": "/ui/sessions/10",
        "id tags": "/ui/id-tags",
        "cluster": "/ui/cluster",
        "audit": "/ui/audit",
    }


async def sign_in(http: httpx.AsyncClient) -> None:
    form = await http.get("/ui/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    response = await http.post("/ui/login", data={"token": harness.BEARER, "csrf": csrf.group(1)})
    assert response.status_code == 303, response.text


async def traffic(ocpp_url: str, count: int, stop: trio.Event, sent: list[int]) -> None:
    """`count` stations each sending a status and a meter value every second until `stop`."""

    async def one(i: int) -> None:
        async with SimulatedStation.connect(ocpp_url, f"CP-{i:06d}") as station:
            await station.boot()
            wh = 0
            while not stop.is_set():
                wh += 100
                await station.status(1, "Charging")
                await station.meter_values(1, None, wh)
                sent[0] += 2
                with trio.move_on_after(1.0):
                    await stop.wait()

    async with trio.open_nursery() as nursery:
        for i in range(1, count + 1):
            nursery.start_soon(one, i)


async def measure(api_url: str, ocpp_url: str, stations: int, requests: int, stations_traffic: int) -> dict[str, Any]:
    stop = trio.Event()
    sent = [0]
    results: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(traffic, ocpp_url, stations_traffic, stop, sent)
        async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
            await sign_in(http)
            await trio.sleep(3)  # traffic under way
            started = time.monotonic()
            sent0 = sent[0]
            for name, path in pages(stations).items():
                for _ in range(3):  # warm-up
                    await http.get(path)
                times = []
                for _ in range(requests):
                    t0 = time.perf_counter()
                    response = await http.get(path)
                    times.append((time.perf_counter() - t0) * 1000)
                    assert response.status_code == 200, (path, response.status_code, response.text[:300])
                times.sort()
                results[name] = {
                    "path": path,
                    "p50_ms": round(statistics.median(times), 1),
                    "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
                    "max_ms": round(times[-1], 1),
                }
                print(f"{name:20} p50 {results[name]['p50_ms']:7.1f} ms  p95 {results[name]['p95_ms']:7.1f} ms")
            rate = (sent[0] - sent0) / (time.monotonic() - started)
        stop.set()
    return {"pages": results, "station_msgs_per_s": round(rate, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stations", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--traffic", type=int, default=200, help="stations sending traffic during the run")
    parser.add_argument("--code", type=Path, help="run the replica from this tree (before/after: main's checkout)")
    parser.add_argument("--label", default="", help="names the results file: console-<label>-<stamp>")
    args = parser.parse_args()
    with harness.postgres() as pg, tempfile.TemporaryDirectory() as logs:
        url = pg.url()
        with harness.replica(url, Path(logs), node_id="bench-a", cwd=args.code) as node:
            asyncio.run(seed(url, args.stations))
            measured = trio.run(measure, node.api_url, node.ocpp_url, args.stations, args.requests, args.traffic)
    settings = {**vars(args), "code": str(args.code or "this tree")}
    load = [round(x, 1) for x in os.getloadavg()]
    data = {"machine": {**harness.machine(), "load_average": load}, "settings": settings, **measured}
    rows = "\n".join(
        f"| {name} | `{r['path']}` | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} |"
        for name, r in measured["pages"].items()
    )
    markdown = (
        f"# Console page timings: {args.stations:,} stations, {args.traffic} stations sending "
        f"({measured['station_msgs_per_s']} msg/s) during the run\n\n"
        f"{args.requests} sequential requests per page after 3 warm-ups, one replica ({settings['code']}),"
        f" signed-in session; load average (1/5/15 min) at the end: {load} on {os.cpu_count()} CPUs.\n\n"
        "| page | path | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|\n" + rows + "\n"
    )
    json_path, md_path = harness.write_results("-".join(filter(None, ("console", args.label))), data, markdown)
    print(markdown)
    print(f"results: {json_path} {md_path}")


if __name__ == "__main__":
    main()
