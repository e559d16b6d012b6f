"""Scale-out: 1 replica vs 3 replicas of a cluster (etcd) on the same stress load.

    python benchmarks/bench_scale.py [--stations 300] [--duration 20] [--warmup 5] [--processes 2]

One private durable Postgres and one etcd serve both runs. Each run gets its own database and etcd prefix,
starts 1 (then 3) `csms serve` replicas with CSMS_ETCD_ENDPOINTS set (the same cluster code path in both runs,
so the ratio isolates the replica count), and drives the same closed-loop stress fleet at them: stations are
spread round-robin over the replicas' OCPP ports directly (station i -> replica i mod n), as an even L4
balancer would, without a balancer process competing for the cores. Reports msg/s of each run, the ratio
(target >= 2.7x), and msg/s per CPU-second the replicas consumed.

Caveat: on a 2-core machine, 3 replicas + Postgres + etcd + the load generator share 2 cores, so the raw ratio
measures contention for those cores, not scale-out. The fairer figure is the efficiency: msg/s per replica
CPU-second (if a 3-replica cluster keeps the single replica's efficiency, its throughput scales with the
cores it is given); the "projected" ratio = 3 x (efficiency with 3) / (efficiency with 1) assumes each replica
gets a core of its own and Postgres keeps up. Writes benchmarks/results/scale-<UTC time>.json and .md.

What getting to an even spread costs the stations (disconnects per station moved) is bench_rebalance.py's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness
from benchmarks.simulator import FleetConfig, raise_fd_limit, run_processes, summarize
from devcluster.etcd import EtcdServer
from devcluster.postgres import PostgresServer

TARGET_RATIO = 2.7
INTERNAL_SECRET = "bench-internal-secret-0123456789"


def measure(
    pg: PostgresServer, etcd: EtcdServer, replicas: int, args: argparse.Namespace, log_dir: Path
) -> dict[str, Any]:
    url = pg.create_database(f"bench_scale_{replicas}")
    tag = int(time.time()) % 10**6  # one etcd prefix per run: the runs never see each other's keys
    with ExitStack() as stack:
        nodes = [
            stack.enter_context(
                harness.replica(
                    url,
                    log_dir,
                    node_id=f"scale{replicas}-r{i + 1}-{tag}",
                    etcd_endpoints=etcd.client_url,
                    etcd_prefix=f"/bench-scale-{replicas}-{tag}/",
                    internal_secret=INTERNAL_SECRET,
                )
            )
            for i in range(replicas)
        ]
        harness.register_id_tag(nodes[0])
        time.sleep(args.settle)  # membership and leadership settle before stations arrive (no rebalancing)
        pids = {}
        for i, node in enumerate(nodes):
            assert node.proc is not None
            pids[f"replica{i + 1}"] = node.proc.pid
        trees = {"postgres": pg.pid or 0}
        if etcd.proc is not None:
            trees["etcd"] = etcd.proc.pid
        meter = harness.CpuMeter(pids, trees=trees)
        cpu: dict[str, float] = {}
        connected: dict[str, float] = {}

        def window() -> None:  # lines the CPU window up with the simulator's measurement window
            time.sleep(args.warmup)
            meter.start()
            end = time.monotonic() + args.duration
            time.sleep(args.duration / 2)  # mid-window: who holds how many stations (no rebalancing, we hope)
            connected.update(
                {f"replica{i + 1}": harness.metric_value(n, "csms_stations_connected") for i, n in enumerate(nodes)}
            )
            time.sleep(max(0.0, end - time.monotonic()))
            cpu.update(meter.stop())

        config = FleetConfig(
            url=nodes[0].ocpp_url,
            urls=tuple(node.ocpp_url for node in nodes),
            stations=args.stations,
            profile="stress",
            duration=args.duration,
            warmup=args.warmup,
            prefix=f"scale{replicas}-",
            id_tag=harness.ID_TAG,
            connect_concurrency=100,
        )
        print(f"-- {replicas} replica(s): {args.stations} stress stations, {args.duration:g}s ...", flush=True)
        result = run_processes(config, args.processes, on_go=window, timeout=config.settle_timeout + 300)
    summary = summarize(result)
    replica_cpu = sum(cpu.get(name, 0.0) for name in pids)
    per_cpu_s = summary["msgs_per_s"] / (replica_cpu / 100) if replica_cpu else 0.0
    row = {
        "replicas": replicas,
        "summary": summary,
        "cpu_pct": {**cpu, "simulator": summary["client_cpu_pct"]},
        "replica_cpu_pct": round(replica_cpu, 1),
        "msgs_per_replica_cpu_s": round(per_cpu_s, 1),
        "stations_per_replica": connected,
        "result": result,
    }
    print(
        f"   {summary['msgs_per_s']:>9,.0f} msg/s  p50 {summary['p50_ms']} ms  p99 {summary['p99_ms']} ms  "
        f"errors {summary['errors_in_window']}  replicas' CPU {replica_cpu:.0f} % -> {per_cpu_s:,.0f} msg per "
        f"replica-CPU-s  cpu {row['cpu_pct']}  stations {connected}",
        flush=True,
    )
    return row


def report(data: dict[str, Any]) -> str:
    one, three = data["runs"]
    rows = []
    for r in data["runs"]:
        s, cpu = r["summary"], r["cpu_pct"]
        replica_cpu = " + ".join(f"{cpu[k]:g}" for k in sorted(cpu) if k.startswith("replica"))
        rows.append(
            [
                r["replicas"],
                f"{s['msgs_per_s']:,.0f}",
                s["p50_ms"],
                s["p99_ms"],
                s["errors_in_window"],
                s["disconnects"],
                replica_cpu,
                f"{r['msgs_per_replica_cpu_s']:,.0f}",
                cpu.get("postgres", ""),
                cpu.get("etcd", ""),
                cpu.get("simulator", ""),
                " / ".join(f"{v:g}" for v in r["stations_per_replica"].values()),
            ]
        )
    headers = ["replicas", "msg/s", "p50 ms", "p99 ms", "errors", "drops", "replica CPU %", "msg per replica-CPU-s"]
    headers += ["postgres CPU %", "etcd CPU %", "simulator CPU %", "stations per replica"]
    m, st = data["machine"], data["settings"]
    return (
        "# Scale: 1 vs 3 replicas, stress profile, durable writes\n\n"
        f"Headline: **3 replicas = {data['ratio']:.2f}x one replica** ({three['summary']['msgs_per_s']:,.0f} vs "
        f"{one['summary']['msgs_per_s']:,.0f} msg/s; target >= {TARGET_RATIO}x). Efficiency: "
        f"{three['msgs_per_replica_cpu_s']:,.0f} vs {one['msgs_per_replica_cpu_s']:,.0f} msg per replica-CPU-second "
        f"({data['efficiency_ratio']:.2f}), projected ratio with a core per replica "
        f"{data['projected_ratio']:.2f}x.\n\n"
        + harness.table(headers, rows)
        + f"\nCaveat: this machine has {m['cpus']} cores ({m['cpu_model']}); 3 replicas, Postgres, etcd and the load "
        "generator all share them, so the raw ratio measures contention for the cores, not scale-out. The "
        "efficiency (msg/s per CPU-second the replicas used) is the fairer figure; the projection "
        "3 x efficiency(3) / efficiency(1) assumes a core per replica and a Postgres that keeps up.\n\n"
        f"Same load both runs: {st['stations']} closed-loop stress stations (MeterValues 50 %, Heartbeat 20 %, "
        "StatusNotification 15 %, Authorize / Start / Stop 5 % each), spread round-robin straight onto the replicas' "
        f"OCPP ports; {st['duration']:g} s window after {st['warmup']:g} s warm-up; simulator in {st['processes']} "
        "processes; both runs in cluster mode (etcd), Postgres fsync=on, synchronous_commit=on. CPU % is of one "
        f"core. Linux {m['kernel']}, Python {m['python']}.\n\n"
        f"Reproduce: `python benchmarks/bench_scale.py --stations {st['stations']} --duration {st['duration']:g} "
        f"--warmup {st['warmup']:g} --processes {st['processes']}`\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=300)
    parser.add_argument("--duration", type=float, default=20.0, help="measurement window per run (s)")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=2, help="simulator processes")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between replicas ready and load")
    args = parser.parse_args()
    raise_fd_limit()
    log_dir = Path(tempfile.mkdtemp(prefix="csms-bench-"))
    with harness.postgres() as pg, EtcdServer() as etcd:
        runs = [measure(pg, etcd, n, args, log_dir) for n in (1, 3)]
    one, three = runs
    rate1, rate3 = one["summary"]["msgs_per_s"], three["summary"]["msgs_per_s"]
    eff1, eff3 = one["msgs_per_replica_cpu_s"], three["msgs_per_replica_cpu_s"]
    data = {
        "benchmark": "scale",
        "machine": harness.machine(),
        "settings": {k: getattr(args, k) for k in ("stations", "duration", "warmup", "processes", "settle")},
        "target_ratio": TARGET_RATIO,
        "ratio": round(rate3 / rate1, 3) if rate1 else 0.0,
        "efficiency_ratio": round(eff3 / eff1, 3) if eff1 else 0.0,
        "projected_ratio": round(3 * eff3 / eff1, 3) if eff1 else 0.0,
        "runs": runs,
    }
    markdown = report(data)
    json_path, md_path = harness.write_results("scale", data, markdown)
    print()
    print(markdown)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
