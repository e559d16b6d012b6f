"""Idle stations per replica: server RSS per connection and connect rate.

    python benchmarks/bench_connections.py [--sizes 1000,5000,10000] [--processes 2] [--hold 10]

For each size, a fresh `csms serve` (auto-registration, its own database in a private durable Postgres) gets N
idle stations from the simulator in separate processes: each connects (at most 200 handshakes in flight),
sends BootNotification and one StatusNotification, then only heartbeats. Server VmRSS is read from /proc
before the first connection and once all are connected; (after - before) / N is the RSS per connection.
The connect rate counts handshake + auto-registration + boot + status per station. Sizes are capped by the
open-file limit (the soft limit is raised to the hard limit here and inherited by the server and simulator).

Idle cost: the replica's CPU while the fleet only heartbeats (and is pinged), minus its CPU with no station
connected (read for `--baseline` s before the first connection), per 10,000 connections; with the event-loop
lag and full-GC pauses of the hold and the load generator's own loop lag. `--runs N` repeats each size on a
fresh replica and reports the median run with the range.
Writes benchmarks/results/connections-<UTC time>.json and .md.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness
from benchmarks.simulator import FleetConfig, raise_fd_limit, run_processes, summarize
from devcluster.postgres import PostgresServer

FD_HEADROOM = 500  # the server's own files, Postgres connections, listeners


def measure(pg: PostgresServer, size: int, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    url = pg.create_database(f"bench_conn_{size}")
    settings = {} if args.ping_interval is None else {"ping_interval": f"{args.ping_interval:g}"}
    with harness.replica(url, log_dir, **settings) as node:
        assert node.proc is not None
        pid = node.proc.pid
        time.sleep(1.0)
        before = harness.rss_kib(pid)
        empty = harness.CpuMeter({"server": pid})  # the replica's own background work, no station connected
        empty.start()
        time.sleep(args.baseline)
        baseline_pct = empty.stop()["server"]
        reading: dict[str, Any] = {}
        meter = harness.CpuMeter({"server": pid}, trees={"postgres": pg.pid or 0})

        def connected(report: dict[str, Any]) -> None:
            reading["connect_cpu_pct"] = meter.stop()
            time.sleep(args.settle)  # let the handshakes' transient buffers go
            reading["after_kib"] = harness.rss_kib(pid)
            reading["report"] = report

        def hold() -> None:  # the idle cost: CPU, event-loop lag and GC pauses while the fleet only heartbeats
            lag0 = harness.histogram_buckets(node, "csms_event_loop_lag_seconds")
            gc0 = harness.histogram_buckets(node, "csms_gc_pause_seconds", 'generation="2"')
            idle = harness.CpuMeter({"server": pid})
            idle.start()
            time.sleep(max(1.0, args.hold - 1.0))
            reading["idle_cpu_pct"] = idle.stop()["server"]
            reading["lag"] = harness.histogram_delta(
                lag0, harness.histogram_buckets(node, "csms_event_loop_lag_seconds")
            )
            gc1 = harness.histogram_buckets(node, "csms_gc_pause_seconds", 'generation="2"')
            reading["full_gc"] = harness.histogram_delta(gc0, gc1)

        config = FleetConfig(
            url=node.ocpp_url,
            stations=size,
            profile="idle",
            duration=args.hold,
            warmup=0.0,
            connectors=1,
            prefix=f"idle{size}-",
            connect_concurrency=args.connect_concurrency,
            settle_timeout=600.0,
            rebase_at_go=True,  # heartbeats spread over the hold, not all those due during the connect phase
        )
        print(f"-- {size} idle stations ...", flush=True)
        meter.start()
        result = run_processes(config, args.processes, on_connected=connected, on_go=hold, timeout=900)
        held_kib = harness.rss_kib(pid)
    pg.drop_database(f"bench_conn_{size}")
    summary = summarize(result)
    connect = summary["connect"]
    after = reading["after_kib"]
    row = {
        "stations": size,
        "connected": connect["connected"],
        "failed": connect["failed"] + connect["unsettled"],
        "connect_seconds": connect["seconds"],
        "connect_rate_per_s": connect["rate_per_s"],
        "server_rss_before_kib": before,
        "server_rss_connected_kib": after,
        "server_rss_after_hold_kib": held_kib,
        "server_rss_per_connection_kib": round((after - before) / max(connect["connected"], 1), 1),
        "simulator_rss_per_station_kib": round(result["connect"]["rss_kib"] / max(size, 1), 1),
        "connect_cpu_pct": reading["connect_cpu_pct"],
        "disconnects_during_hold": summary["disconnects"],
        "idle_cpu_pct": reading["idle_cpu_pct"],
        "baseline_cpu_pct": baseline_pct,
        # what the sockets add: the replica's CPU with none connected is not a cost of connections
        "idle_cpu_pct_per_10k": round(
            max(0.0, reading["idle_cpu_pct"] - baseline_pct) * 10_000 / max(connect["connected"], 1), 1
        ),
        "loop_lag_in_hold": reading["lag"],
        "full_gc_in_hold": reading["full_gc"],
        "heartbeat_p99_ms": summary["p99_ms"],
        "generator_loop_lag": summary["generator_loop_lag"],
        "errors": summary["error_kinds"],
        # Stations that failed to connect keep retrying through the hold: handshakes, not idle sockets.
        "idle_reading_valid": connect["failed"] + connect["unsettled"] == 0 and summary["disconnects"] == 0,
        "summary": summary,
    }
    print(
        f"   connected {row['connected']}/{size} in {row['connect_seconds']} s ({row['connect_rate_per_s']}/s), "
        f"server RSS {before // 1024} -> {after // 1024} MiB = {row['server_rss_per_connection_kib']} KiB/conn, "
        f"CPU while connecting {row['connect_cpu_pct']}; idle {row['idle_cpu_pct']} % "
        f"({row['idle_cpu_pct_per_10k']} % per 10k), loop lag max < {reading['lag']['max_below_s']} s, "
        f"full GCs {reading['full_gc']['count']} (max < {reading['full_gc']['max_below_s']} s)"
        + ("" if row["idle_reading_valid"] else "  INVALID idle reading: stations were still connecting"),
        flush=True,
    )
    return row


def median_of_runs(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median idle CPU (a real run, never the best), with every run's figures for the range;
    runs whose fleet was still connecting during the hold are left out (all of them if none is valid)."""
    valid = [r for r in rows if r["idle_reading_valid"]] or rows
    median = dict(sorted(valid, key=lambda r: r["idle_cpu_pct_per_10k"])[len(valid) // 2])
    for key in ("idle_cpu_pct_per_10k", "server_rss_per_connection_kib", "connect_rate_per_s"):
        median[f"runs_{key}"] = [r[key] for r in valid]
    median["runs_loop_lag_max_below_s"] = [r["loop_lag_in_hold"]["max_below_s"] for r in valid]
    median["runs_invalid"] = len(rows) - len([r for r in rows if r["idle_reading_valid"]])
    return median


def _range(values: list[Any]) -> str:
    return f"{min(values)}-{max(values)}" if len(values) > 1 else ""


def report(data: dict[str, Any]) -> str:
    rows = [
        [
            r["stations"],
            r["connected"],
            r["failed"],
            r["connect_rate_per_s"],
            r["connect_cpu_pct"].get("server", ""),
            r["connect_cpu_pct"].get("postgres", ""),
            f"{r['server_rss_before_kib'] / 1024:.0f}",
            f"{r['server_rss_connected_kib'] / 1024:.0f}",
            r["server_rss_per_connection_kib"],
            r["simulator_rss_per_station_kib"],
            r["disconnects_during_hold"],
            r["idle_cpu_pct_per_10k"] if r["idle_reading_valid"] else f"invalid ({r['idle_cpu_pct_per_10k']})",
            _range(r.get("runs_idle_cpu_pct_per_10k", [])),
            r["loop_lag_in_hold"]["max_below_s"],
            r["full_gc_in_hold"]["count"],
        ]
        for r in data["rows"]
    ]
    headers = ["stations", "connected", "failed", "connect/s", "server CPU % (connecting)", "postgres CPU %"]
    headers += ["RSS before MiB", "RSS connected MiB"]
    headers += ["server KiB/conn", "simulator KiB/station", "drops in hold", "idle CPU % per 10k (median)"]
    headers += ["range of runs", "loop lag max below s", "full GCs in hold"]
    best = max(data["rows"], key=lambda r: r["connected"])
    projected = best["server_rss_per_connection_kib"] * 20_000 / 1024 + best["server_rss_before_kib"] / 1024
    m, st = data["machine"], data["settings"]
    return (
        "# Connections: idle stations on one replica\n\n"
        f"Headline: **{best['connected']:,} idle stations held at {best['server_rss_per_connection_kib']} KiB "
        f"server RSS each** (projected 20,000 stations: {projected:,.0f} MiB; target <= 1,024 MiB), "
        f"connected at {best['connect_rate_per_s']:,.0f}/s.\n\n"
        + harness.table(headers, rows)
        + f"\nOpen-file limit {data['fd_limit']} (soft raised to hard). Each station: WebSocket handshake "
        "(ocpp1.6), auto-registration, BootNotification, one StatusNotification, then heartbeats only; "
        f"held {st['hold']} s; at most {st['connect_concurrency']} handshakes in flight; simulator in "
        f"{st['processes']} processes.\n\n"
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), Linux {m['kernel']}, Python {m['python']}; server, "
        "Postgres and simulator share the cores, so the connect rate is a floor.\n\n"
        f"Reproduce: `python benchmarks/bench_connections.py --sizes {','.join(map(str, st['sizes']))} "
        f"--hold {st['hold']:g} --runs {st.get('runs', 1)}"
        + (f" --ping-interval {st['ping_interval']:g}" if st.get("ping_interval") is not None else "")
        + "`\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000,10000", help="comma-separated station counts")
    parser.add_argument("--processes", type=int, default=2, help="simulator processes")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds to hold the fleet connected")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds after connecting before reading RSS")
    parser.add_argument("--connect-concurrency", type=int, default=200)
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of replica CPU read before connecting")
    parser.add_argument("--runs", type=int, default=1, help="runs per size: the median run is reported, with the range")
    parser.add_argument("--ping-interval", type=float, default=None, help="CSMS_PING_INTERVAL for the replica")
    args = parser.parse_args()
    fd_limit = raise_fd_limit()
    cap = fd_limit - FD_HEADROOM
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(size > cap for size in sizes):
        print(f"open-file limit {fd_limit}: capping sizes at {cap}", flush=True)
    sizes = sorted({min(size, cap) for size in sizes})
    args.sizes = sizes
    log_dir = Path(tempfile.mkdtemp(prefix="csms-bench-"))
    with harness.postgres() as pg:
        rows = [median_of_runs([measure(pg, size, args, log_dir) for _ in range(args.runs)]) for size in sizes]
    data = {
        "benchmark": "connections",
        "machine": harness.machine(),
        "fd_limit": fd_limit,
        "rlimit_nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "settings": {
            k: getattr(args, k)
            for k in ("sizes", "processes", "hold", "settle", "connect_concurrency", "runs", "ping_interval")
        },
        "rows": rows,
    }
    markdown = report(data)
    json_path, md_path = harness.write_results("connections", data, markdown)
    print()
    print(markdown)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
