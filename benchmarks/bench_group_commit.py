"""Group commit on vs off: N concurrent trio tasks ("stations") doing small durable inserts via db.write.

Spawns its own Postgres (durable settings: fsync on, synchronous_commit on, unless --fast) and reports rows/s
and per-write latency (p50/p99) for each mode; writes JSON to benchmarks/results/group_commit.json.

    python benchmarks/bench_group_commit.py [--stations 200] [--seconds 5] [--fast]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trio

from csms.storage import Connection, Database, NullObserver, WriteOp
from devcluster.postgres import PostgresServer

RESULTS = Path(__file__).parent / "results" / "group_commit.json"

_TABLE = """
CREATE TABLE meter_values (
    id         bigserial PRIMARY KEY,
    station_id text        NOT NULL,
    connector  int         NOT NULL,
    value_wh   bigint      NOT NULL,
    taken_at   timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass
class Mode:
    name: str
    group_commit: bool
    writers: int = 1
    max_batch: int = 256
    max_wait: float = 0.002


@dataclass
class Result:
    mode: str
    stations: int
    seconds: float
    rows: int
    rows_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    transactions: int
    mean_batch: float


class Batches(NullObserver):
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def batch_committed(self, size: int, seconds: float) -> None:
        self.sizes.append(size)


def insert(station: str, value: int) -> WriteOp[None]:
    async def op(conn: Connection) -> None:
        await conn.execute(
            "INSERT INTO meter_values (station_id, connector, value_wh) VALUES ($1, 1, $2)", station, value
        )

    return op


async def run_mode(url: str, mode: Mode, stations: int, seconds: float) -> Result:
    observer = Batches()
    latencies: list[float] = []
    async with Database.open(
        url,
        pool_size=10,
        group_commit=mode.group_commit,
        writers=mode.writers,
        max_batch=mode.max_batch,
        max_wait=mode.max_wait,
        observer=observer,
    ) as db:
        await db.execute("DROP TABLE IF EXISTS meter_values; " + _TABLE)
        stop_at = trio.current_time() + seconds

        async def station(n: int) -> None:
            name = f"CP-{n:05d}"
            value = 0
            while trio.current_time() < stop_at:
                started = time.perf_counter()
                await db.write(insert(name, value))
                latencies.append(time.perf_counter() - started)
                value += 1

        started = time.perf_counter()
        with trio.fail_after(seconds + 60):
            async with trio.open_nursery() as nursery:
                for n in range(stations):
                    nursery.start_soon(station, n)
        elapsed = time.perf_counter() - started
        rows = int(await db.fetchval("SELECT count(*) FROM meter_values"))
    assert rows == len(latencies), (rows, len(latencies))
    ordered = sorted(latencies)
    return Result(
        mode=mode.name,
        stations=stations,
        seconds=round(elapsed, 2),
        rows=rows,
        rows_per_s=round(rows / elapsed, 1),
        p50_ms=round(statistics.median(ordered) * 1000, 2),
        p99_ms=round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
        max_ms=round(ordered[-1] * 1000, 2),
        transactions=len(observer.sizes),
        mean_batch=round(statistics.fmean(observer.sizes), 1) if observer.sizes else 0.0,
    )


async def main_async(url: str, args: argparse.Namespace) -> list[Result]:
    modes = [
        Mode("group commit (1 writer)", group_commit=True),
        Mode("group commit (2 writers)", group_commit=True, writers=2),
        Mode("one transaction per write", group_commit=False),
    ]
    results = []
    for mode in modes:
        result = await run_mode(url, mode, args.stations, args.seconds)
        print(
            f"{result.mode:28} {result.rows_per_s:>9.0f} rows/s   p50 {result.p50_ms:>7.2f} ms   "
            f"p99 {result.p99_ms:>7.2f} ms   {result.transactions} tx (mean batch {result.mean_batch})",
            flush=True,
        )
        results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=200, help="concurrent writer tasks")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration per mode")
    parser.add_argument("--fast", action="store_true", help="fsync off (not durable): isolates CPU costs")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    with PostgresServer(fast=args.fast) as server:
        url = server.url()
        print(f"Postgres at {url} ({'fsync off' if args.fast else 'durable'}), {args.stations} stations")
        results = trio.run(main_async, url, args)

    report: dict[str, Any] = {
        "benchmark": "group_commit",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
        "durable": not args.fast,
        "stations": args.stations,
        "seconds_per_mode": args.seconds,
        "results": [asdict(r) for r in results],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
