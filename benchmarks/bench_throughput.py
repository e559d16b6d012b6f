"""Stress throughput of one replica with durable writes, next to the raw trio-websocket echo ceiling.

    python benchmarks/bench_throughput.py [--stations 100] [--duration 15] [--warmup 3] [--processes 1]

In one run, with the same simulator (its own process) and the same frames:
  1. echo      - a trio-websocket server that sends every frame straight back (the transport ceiling);
  2. ocpp-stub - parses each call and answers a canned result, no storage (JSON + framing, no CSMS);
  3. csms gc=on / gc=off - `csms serve` against a private Postgres with fsync on, CSMS_GROUP_COMMIT true/false.
Each station sends its next call as soon as the previous one is answered (closed loop), so latency is
roughly stations / throughput: more stations raise latency, not throughput, once the server is saturated.
Prints a table and writes benchmarks/results/throughput-<UTC time>.json and .md. The headline is
csms msgs/s divided by the echo msgs/s.

Caveat: on a 2-core machine the server, Postgres and the load generator share the cores; the CPU column says
who was busy (100 % = one core).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness
from benchmarks.simulator import FleetConfig, raise_fd_limit, run_processes, summarize

BATCH_METRIC = "csms_db_group_commit_batch_size"


def _measure(
    label: str,
    config: FleetConfig,
    processes: int,
    meter: harness.CpuMeter,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    cpu: dict[str, float] = {}

    def window() -> None:  # runs right after "go": line the CPU window up with the workers' window
        time.sleep(config.warmup)
        meter.start()
        time.sleep(config.duration)
        cpu.update(meter.stop())

    print(f"-- {label}: {config.stations} stations, {config.duration:g}s ...", flush=True)
    result = run_processes(config, processes, on_go=window, timeout=config.settle_timeout + 300)
    summary = summarize(result)
    row = {"label": label, "summary": summary, "cpu_pct": cpu, **(extra or {}), "result": result}
    print(
        f"   {summary['msgs_per_s']:>9,.0f} msg/s  p50 {summary['p50_ms']} ms  p99 {summary['p99_ms']} ms  "
        f"errors {summary['errors_total']}  cpu {cpu}",
        flush=True,
    )
    return row


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
    runs: list[dict[str, Any]] = []
    for mode in ("echo", "ocpp"):
        with harness.stub_server(mode) as (pid, port):
            config = FleetConfig(**{**base.__dict__, "url": f"ws://127.0.0.1:{port}/ocpp", "echo": mode == "echo"})
            label = "echo (transport ceiling)" if mode == "echo" else "ocpp-stub (no storage)"
            runs.append(_measure(label, config, args.processes, harness.CpuMeter({"server": pid})))
    log_dir = Path(tempfile.mkdtemp(prefix="csms-bench-"))
    with harness.postgres() as pg:
        assert pg.pid is not None
        for group_commit in (True, False):
            name = "on" if group_commit else "off"
            url = pg.create_database(f"bench_gc_{name}")
            with harness.replica(url, log_dir, group_commit=str(group_commit).lower()) as node:
                harness.register_id_tag(node)
                assert node.proc is not None
                meter = harness.CpuMeter({"server": node.proc.pid}, trees={"postgres": pg.pid})
                config = FleetConfig(**{**base.__dict__, "url": node.ocpp_url, "prefix": f"gc{name}-"})
                batch0 = harness.metric_sum_count(node, BATCH_METRIC)
                row = _measure(f"csms group commit {name}", config, args.processes, meter)
                batch1 = harness.metric_sum_count(node, BATCH_METRIC)
                writes, commits = batch1[0] - batch0[0], batch1[1] - batch0[1]
                row["server_rss_kib"] = harness.rss_kib(node.proc.pid)
                row["mean_batch"] = round(writes / commits, 1) if commits else None
                runs.append(row)
    return {
        "benchmark": "throughput",
        "machine": harness.machine(),
        "settings": {k: getattr(args, k) for k in ("stations", "duration", "warmup", "processes")},
        "postgres": "private server, fsync=on, synchronous_commit=on (durable)",
        "runs": runs,
    }


def report(data: dict[str, Any]) -> str:
    runs = data["runs"]
    echo = runs[0]["summary"]["msgs_per_s"] or 1.0
    rows = []
    for r in runs:
        s, cpu = r["summary"], r["cpu_pct"]
        rows.append(
            [
                r["label"],
                f"{s['msgs_per_s']:,.0f}",
                f"{s['msgs_per_s'] / echo:.2f}",
                s["p50_ms"],
                s["p99_ms"],
                s["p999_ms"],
                s["errors_in_window"],
                cpu.get("server", ""),
                cpu.get("postgres", ""),
                s["client_cpu_pct"],
                r.get("mean_batch") or "",
            ]
        )
    headers = ["target", "msg/s", "x echo", "p50 ms", "p99 ms", "p99.9 ms", "errors", "server CPU %"]
    headers += ["postgres CPU %", "simulator CPU %", "mean batch"]
    csms = {r["label"]: r["summary"] for r in runs}
    on = csms.get("csms group commit on", {})
    m, st = data["machine"], data["settings"]
    return (
        "# Throughput: one replica, stress profile, durable writes\n\n"
        f"Headline: **{on.get('msgs_per_s', 0):,.0f} msg/s with group commit = "
        f"{on.get('msgs_per_s', 0) / echo:.2f} x the trio-websocket echo ceiling** ({echo:,.0f} round trips/s), "
        f"p99 {on.get('p99_ms')} ms.\n\n"
        + harness.table(headers, rows)
        + f"\n{st['stations']} stations in closed loop (each sends its next call when the last is answered), "
        f"{st['duration']} s window after {st['warmup']} s warm-up, simulator in {st['processes']} separate "
        "process(es). Mix: MeterValues 50 %, Heartbeat 20 %, StatusNotification 15 %, Authorize / "
        "StartTransaction / StopTransaction 5 % each. Postgres: fsync=on, synchronous_commit=on.\n\n"
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), Linux {m['kernel']}, Python {m['python']}. "
        "Caveat: the replica, Postgres and the load generator share these cores (CPU % is of one core); "
        "the echo ceiling is itself limited by the simulator sharing the machine with the echo server.\n\n"
        "Reproduce: `python benchmarks/bench_throughput.py "
        f"--stations {st['stations']} --duration {st['duration']} --warmup {st['warmup']}`\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--duration", type=float, default=15.0, help="measurement window per target (s)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--processes", type=int, default=1, help="simulator processes")
    args = parser.parse_args()
    data = run(args)
    markdown = report(data)
    json_path, md_path = harness.write_results("throughput", data, markdown)
    print()
    print(markdown)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
