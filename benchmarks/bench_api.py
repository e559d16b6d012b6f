"""REST API request latency: this tree against a baseline tree, interleaved, on one durable Postgres.

Seeds 500 stations, 5,000 transactions (meter values on some) and an id tag, then against one `csms serve` per
tree and round measures, client-side, N sequential and N concurrent (C workers) requests of each scenario:

- list:     GET /api/v1/stations (a 100-station page)
- tx:       GET /api/v1/transactions/{id} (with 30 meter values)
- cmd_422:  POST /api/v1/stations/{id}/commands/ChangeAvailability with a body that breaks the schema
- cmd_ok:   POST .../commands/ChangeAvailability, valid (the station is offline: validated, recorded, 409)
- tag_422:  PUT /api/v1/id-tags/{id} with a bad body (a model-validated body)
- tag_ok:   PUT /api/v1/id-tags/{id}, valid (200; 201 the first time)

Trees alternate (baseline, this, baseline, ...) so that load from other work on the machine hits both alike.

    python -m benchmarks.bench_api --baseline /work/main --rounds 3 --requests 300 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import trio

from benchmarks import harness

STATION = "CP-000001"
SEED = [
    """INSERT INTO stations (id, vendor, model) SELECT 'CP-' || lpad(i::text, 6, '0'), 'Vendor', 'Model'
       FROM generate_series(1, 500) i ON CONFLICT DO NOTHING""",
    """INSERT INTO transactions (station_id, connector_id, id_tag, id_tag_status, meter_start, start_timestamp,
           start_received_at, meter_stop, stop_timestamp, stop_received_at, stop_reason)
       SELECT 'CP-' || lpad((1 + i % 500)::text, 6, '0'), 1, 'TAG', 'Accepted', 0, now(), now(), 5000, now(),
              now(), 'Local'
       FROM generate_series(1, 5000) i ON CONFLICT DO NOTHING""",
    """INSERT INTO meter_values (station_id, connector_id, transaction_id, station_timestamp, received_at, source,
           measurand, phase, unit, context, location, format, value)
       SELECT t.station_id, 1, t.id, t.start_timestamp + make_interval(mins => k), now(), 'MeterValues',
              'Energy.Active.Import.Register', '', 'Wh', 'Sample.Periodic', 'Outlet', 'Raw', (k * 180)::text
       FROM transactions t, generate_series(1, 30) k WHERE t.id = 10 ON CONFLICT DO NOTHING""",
    "ANALYZE",
]
SCENARIOS: dict[str, tuple[str, str, Any, int]] = {
    "list": ("GET", "/api/v1/stations", None, 200),
    "tx": ("GET", "/api/v1/transactions/10", None, 200),
    "cmd_422": ("POST", f"/api/v1/stations/{STATION}/commands/ChangeAvailability", {"connectorId": "x"}, 422),
    "cmd_ok": (
        "POST",
        f"/api/v1/stations/{STATION}/commands/ChangeAvailability",
        {"connectorId": 0, "type": "Operative"},
        409,
    ),
    "tag_422": ("PUT", "/api/v1/id-tags/BENCH", {"status": "Nope", "expiry_date": 5}, 422),
    "tag_ok": ("PUT", "/api/v1/id-tags/BENCH", {"status": "Accepted", "parent_id_tag": "FLEET"}, 200),
}


async def seed(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for sql in SEED:
            await conn.execute(sql)
    finally:
        await conn.close()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": round(at(0.50) * 1000, 2), "p95": round(at(0.95) * 1000, 2), "p99": round(at(0.99) * 1000, 2)}


async def measure(url: str, requests: int, concurrency: int) -> dict[str, dict[str, dict[str, float]]]:
    headers = {"Authorization": f"Bearer {harness.BEARER}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30, limits=limits) as client:
        return {name: await scenario(client, name, requests, concurrency) for name in SCENARIOS}


async def scenario(client: httpx.AsyncClient, name: str, requests: int, concurrency: int) -> dict[str, Any]:
    method, path, body, status = SCENARIOS[name]

    async def one(samples: list[float]) -> None:
        start = time.perf_counter()
        response = await client.request(method, path, json=body)
        samples.append(time.perf_counter() - start)
        assert response.status_code in (status, status + 1), (name, response.status_code, response.text[:300])

    for _ in range(20):  # warm up (connections, caches, the first compile of a schema)
        await one([])
    sequential: list[float] = []
    for _ in range(requests):
        await one(sequential)
    concurrent: list[float] = []
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            await one(concurrent)

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return {"sequential": percentiles(sequential), "concurrent": percentiles(concurrent)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the tree to compare with (e.g. /work/main)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    trees = {"baseline": args.baseline.resolve(), "this": harness.REPO_ROOT}
    runs: dict[str, list[Any]] = {"baseline": [], "this": []}
    with harness.postgres() as pg, tempfile.TemporaryDirectory() as logs:
        database_url = pg.url()
        for _ in range(args.rounds):
            for label, tree in trees.items():
                with harness.replica(database_url, Path(logs), cwd=tree) as node:
                    if not runs["baseline"] and not runs["this"]:
                        asyncio.run(seed(database_url))
                    runs[label].append(trio.run(measure, node.api_url, args.requests, args.concurrency))
                    print(label, runs[label][-1]["list"], flush=True)
    summary = {label: summarise(rounds) for label, rounds in runs.items()}
    data = {"machine": harness.machine(), "args": {k: str(v) for k, v in vars(args).items()}, "runs": runs,
            "median_of_rounds": summary}  # fmt: skip
    rows = [
        [name, mode, *(summary[label][name][mode][q] for label in ("baseline", "this") for q in ("p50", "p95", "p99"))]
        for name in SCENARIOS
        for mode in ("sequential", "concurrent")
    ]
    headers = ["scenario", "mode", "base p50", "base p95", "base p99", "this p50", "this p95", "this p99"]
    markdown = f"# API latency (ms, median of {args.rounds} interleaved rounds)\n\n" + harness.table(headers, rows)
    paths = harness.write_results("api-latency", data, markdown)
    print(markdown, *paths, sep="\n")


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each percentile's median over the rounds."""
    return {
        name: {
            mode: {q: statistics.median(r[name][mode][q] for r in rounds) for q in ("p50", "p95", "p99")}
            for mode in ("sequential", "concurrent")
        }
        for name in SCENARIOS
    }


if __name__ == "__main__":
    main()
