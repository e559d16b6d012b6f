"""The outbox and its export under the stress profile, and meter-value inserts into the partitioned table.

    python benchmarks/bench_export.py [--stations 100] [--duration 10] [--warmup 3] [--baseline no-events]

In one run, each on its own database of one private Postgres (fsync on, synchronous_commit on):
  1. without outbox - `csms serve` from the baseline, stress profile: by default (`no-events`) this tree's HEAD
                      with the outbox's writes stubbed out (same code otherwise, so the difference is the outbox
                      alone); or any git revision (an older tree before the outbox: other changes count too);
  2. outbox only    - this tree, the same load, no exporter: what the outbox's writes cost;
  3. with outbox    - this tree, the same load, exporting to a real `nats-server -js`; a subscriber on the
                      stream's subjects measures commit -> JetStream lag per event (receipt time minus the
                      event's `time`, which is its transaction's start: an upper bound of commit -> stream);
  4. inserts        - the group-commit writer inserting meter values from 200 tasks into the partitioned
                      meter_values and into an unpartitioned copy (same columns, indexes and constraint).
Writes benchmarks/results/export-<UTC time>.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats
import orjson
import trio

from benchmarks import harness
from benchmarks.bench_throughput import _measure
from benchmarks.simulator import FleetConfig, raise_fd_limit
from csms.app import MIGRATIONS
from csms.storage import Database, Statement
from devcluster.nats import NatsServer

REPO = Path(__file__).resolve().parent.parent


class LagRecorder:
    """Core-NATS subscriber (its own asyncio loop in a thread) noting each event's receipt time minus its time."""

    def __init__(self, url: str, subject: str = "csms.>") -> None:
        self.url, self.subject = url, subject
        self.samples: list[tuple[float, float]] = []  # (event time, lag seconds)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        nc = await nats.connect(self.url)

        async def on_message(msg: Any) -> None:
            now = time.time()
            at = datetime.fromisoformat(orjson.loads(msg.data)["time"]).timestamp()
            self.samples.append((at, now - at))

        await nc.subscribe(self.subject, cb=on_message)
        self._ready.set()
        while not self._stop.is_set():
            await asyncio.sleep(0.1)
        await nc.drain()

    def __enter__(self) -> LagRecorder:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _percentile(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=1000)[int(q * 1000) - 1] * 1000, 1) if len(values) > 2 else 0.0


# Appended to the `no-events` baseline's copy of storage and the outbox: event writes become no-ops there.
_NO_EVENTS = {
    "csms/outbox/writing.py": """

async def emit(conn: Connection, *events: Event) -> None:  # benchmark baseline: no events
    return None
""",
    "csms/storage/batch.py": """

_merged_run = StatementGroup.run


async def _run_without_events(self: StatementGroup, conn: asyncpg.Connection) -> Any:
    if "INSERT INTO outbox" in self.sql:  # benchmark baseline: no events
        return []
    return await _merged_run(self, conn)


StatementGroup.run = _run_without_events  # type: ignore[method-assign]
""",
    "csms/storage/work.py": """

_all_statements = run_statements


async def run_statements(conn: Connection, statements: Sequence[Statement]) -> Any:
    return await _all_statements(conn, [s for s in statements if "INSERT INTO outbox" not in s.sql])
""",
}


def _baseline_tree(revision: str) -> Path:
    """A revision's tree; `no-events`: HEAD's, with every event write skipped."""
    tree = Path(tempfile.mkdtemp(prefix="csms-baseline-"))
    commit = "HEAD" if revision == "no-events" else revision
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    if revision == "no-events":
        for path, tail in _NO_EVENTS.items():
            with (tree / path).open("a") as file:
                file.write(tail)
    return tree


async def _insert_rate(url: str, table: str, seconds: float, tasks: int = 200) -> float:
    sql = f"""
    INSERT INTO {table} (station_id, connector_id, transaction_id, station_timestamp, received_at, source,
                         measurand, phase, unit, context, location, format, value)
    VALUES ($1, 1, 0, $2, now(), 'MeterValues', 'Energy.Active.Import.Register', '', 'Wh', 'Sample.Periodic',
            'Outlet', 'Raw', $3)
    """
    done = 0
    async with Database.open(url, pool_size=2) as db:
        deadline = trio.current_time() + seconds

        async def station(n: int) -> None:
            nonlocal done
            i = 0
            while trio.current_time() < deadline:
                i += 1
                await db.write_statements([Statement(sql, (f"B-{n}", datetime.now(UTC), str(i)))])
                done += 1

        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for n in range(tasks):
                nursery.start_soon(station, n)
        return done / (trio.current_time() - started)


async def _prepare(url: str) -> None:
    async with Database.open(url, pool_size=2) as db:
        await db.migrate(MIGRATIONS)
        await db.execute(
            "CREATE TABLE meter_values_plain (LIKE meter_values INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
            " INCLUDING INDEXES)"
        )


def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit()
    base = FleetConfig(
        url="",
        stations=args.stations,
        profile="stress",
        duration=args.duration,
        warmup=args.warmup,
        id_tag=harness.ID_TAG,
        connect_concurrency=100,
    )
    log_dir = Path(tempfile.mkdtemp(prefix="csms-bench-export-"))
    runs: list[dict[str, Any]] = []
    baseline = _baseline_tree(args.baseline)
    with harness.postgres() as pg, NatsServer() as nats_server:
        assert pg.pid is not None
        url = pg.create_database("bench_no_outbox")
        with harness.replica(url, log_dir, cwd=baseline) as node:
            harness.register_id_tag(node)
            assert node.proc is not None
            meter = harness.CpuMeter({"server": node.proc.pid}, trees={"postgres": pg.pid})
            config = FleetConfig(**{**base.__dict__, "url": node.ocpp_url, "prefix": "nob-"})
            runs.append(_measure(f"without outbox ({args.baseline})", config, args.processes, meter))
        url = pg.create_database("bench_outbox_only")
        with harness.replica(url, log_dir) as node:  # the outbox's writes alone: no exporter reading it
            harness.register_id_tag(node)
            assert node.proc is not None
            meter = harness.CpuMeter({"server": node.proc.pid}, trees={"postgres": pg.pid})
            config = FleetConfig(**{**base.__dict__, "url": node.ocpp_url, "prefix": "onl-"})
            runs.append(_measure("with outbox, no exporter", config, args.processes, meter))
        url = pg.create_database("bench_outbox")
        with (
            harness.replica(url, log_dir, export_nats_url=nats_server.url, export_poll_ms="20") as node,
            LagRecorder(nats_server.url) as lag,
        ):
            harness.register_id_tag(node)
            assert node.proc is not None
            meter = harness.CpuMeter({"server": node.proc.pid}, trees={"postgres": pg.pid})
            config = FleetConfig(**{**base.__dict__, "url": node.ocpp_url, "prefix": "out-"})
            started = time.time()
            row = _measure("with outbox + JetStream exporter", config, args.processes, meter)
            time.sleep(3)  # the exporter's tail
            window = [s for at, s in lag.samples if at >= started + args.warmup]
            row["lag_ms"] = {
                "events": len(window),
                "p50": _percentile(window, 0.5),
                "p99": _percentile(window, 0.99),
                "max": round(max(window) * 1000, 1) if window else 0.0,
            }
            row["events_exported"] = harness.metric_value(node, "csms_events_exported_total")
            print(f"   commit -> JetStream lag: {row['lag_ms']}", flush=True)
            runs.append(row)
        url = pg.create_database("bench_inserts")
        trio.run(_prepare, url)
        inserts = {}
        for table in ("meter_values", "meter_values_plain", "meter_values"):
            inserts[table] = round(trio.run(_insert_rate, url, table, args.insert_seconds))
            print(f"-- inserts into {table}: {inserts[table]:,} rows/s", flush=True)
    return {
        "benchmark": "export",
        "machine": harness.machine(),
        "settings": {k: getattr(args, k) for k in ("stations", "duration", "warmup", "processes", "baseline")},
        "postgres": "private server, fsync=on, synchronous_commit=on (durable)",
        "runs": runs,
        "inserts_rows_per_s": inserts,
    }


def report(data: dict[str, Any]) -> str:
    without, writes_only, with_outbox = data["runs"][0], data["runs"][1], data["runs"][2]
    a, w, b = (r["summary"]["msgs_per_s"] for r in (without, writes_only, with_outbox))
    lag = with_outbox["lag_ms"]
    rows = [
        [
            r["label"],
            f"{r['summary']['msgs_per_s']:,.0f}",
            r["summary"]["p50_ms"],
            r["summary"]["p99_ms"],
            r["summary"]["errors_in_window"],
            r["cpu_pct"].get("server", ""),
            r["cpu_pct"].get("postgres", ""),
        ]
        for r in data["runs"]
    ]
    ins = data["inserts_rows_per_s"]
    st, m = data["settings"], data["machine"]
    return (
        "# Outbox and export: throughput cost, commit -> JetStream lag, partitioned inserts\n\n"
        f"Headline: the outbox's writes cost **{(1 - w / a) * 100 if a else 0:.0f} %** of stress throughput "
        f"({a:,.0f} -> {w:,.0f} msg/s), with the JetStream exporter running too "
        f"**{(1 - b / a) * 100 if a else 0:.0f} %** ({b:,.0f} msg/s); "
        f"commit -> JetStream lag **p50 {lag['p50']} ms, p99 {lag['p99']} ms** "
        f"({lag['events']:,} events). Group-commit inserts: partitioned meter_values {ins['meter_values']:,} rows/s, "
        f"unpartitioned copy {ins['meter_values_plain']:,} rows/s.\n\n"
        + harness.table(["target", "msg/s", "p50 ms", "p99 ms", "errors", "server CPU %", "postgres CPU %"], rows)
        + f"\n{st['stations']} stations, stress profile, {st['duration']} s window after {st['warmup']} s warm-up; "
        f"baseline = `{st['baseline']}` (no outbox) in the same run, same Postgres. Lag = receipt by a core-NATS "
        "subscriber minus the event's `time` (its transaction's start), so it includes the commit itself and the "
        "exporter's poll interval (20 ms here).\n\n"
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}); replica, Postgres, NATS and the simulator share them.\n\n"
        f"Reproduce: `python benchmarks/bench_export.py --stations {st['stations']} --duration {st['duration']}`\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--insert-seconds", type=float, default=5.0)
    parser.add_argument(
        "--baseline", default="no-events", help="no-events (HEAD without event writes) or a git revision"
    )
    args = parser.parse_args()
    data = run(args)
    markdown = report(data)
    json_path, md_path = harness.write_results("export", data, markdown)
    print()
    print(markdown)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
