"""OCPP 1.6 next to 2.0.1 on one replica: the stress and realistic profiles, interleaved, several short runs each.

    python benchmarks/bench_versions.py [--runs 3] [--stress-stations 100] [--realistic-stations 500]
    python benchmarks/bench_versions.py --baseline /path/to/main   # before/after: each run also on that code

Rounds run 1.6 stress, 2.0.1 stress, 1.6 realistic, 2.0.1 realistic (the version order alternates per round), each
on a fresh replica and database in one private durable Postgres, so load from elsewhere on the shared machine
falls on both versions alike. Per configuration: the median and range of msg/s, p99 and server RSS per
connection ((RSS after the window - RSS of the idle replica) / stations). The load average is recorded before
and after every run. With --baseline, every configuration also runs on the csms code of that checkout,
next to this one (the order alternating per round), so a change is measured before and after in one session.
Writes benchmarks/results/versions-<UTC time>.json and .md.

The two versions send the same calls per session (benchmarks/profiles201.py maps each 1.6 step), so the
difference is the protocol's cost: TransactionEvent derives its transaction from every event kept (1.6's
MeterValues is a plain insert), and 2.0.1 checks boot rules and typed idTokens.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness
from benchmarks.bench_realistic import real_station_msgs_per_s
from benchmarks.simulator import FleetConfig, raise_fd_limit, run_processes, summarize

VERSIONS = ("ocpp1.6", "ocpp2.0.1")
PROFILES = ("stress", "realistic")
CURRENT, BASELINE = "this", "baseline"


def _config(profile: str, protocol: str, url: str, prefix: str, args: argparse.Namespace) -> FleetConfig:
    realistic = profile == "realistic"
    return FleetConfig(
        url=url,
        stations=args.realistic_stations if realistic else args.stress_stations,
        profile=profile,
        protocol=protocol,
        speed=args.speed,
        duration=args.duration,
        warmup=1800.0 / args.speed if realistic else args.warmup,
        prefix=prefix,
        id_tag=harness.ID_TAG,
        connect_concurrency=100,
        rebase_at_go=realistic,
    )


def measure(
    pg: Any, name: str, profile: str, protocol: str, args: argparse.Namespace, log_dir: Path, code: str = CURRENT
) -> dict[str, Any]:
    url = pg.create_database(f"bench_versions_{name}")
    load_before = os.getloadavg()
    with harness.replica(url, log_dir, cwd=args.baseline if code == BASELINE else None) as node:
        harness.register_id_tag(node)
        assert node.proc is not None
        pid = node.proc.pid
        idle_kib = harness.rss_kib(pid)
        config = _config(profile, protocol, node.ocpp_url, f"{name}-", args)
        print(f"-- {name}: {profile} {protocol} ({code}), {config.stations} stations ...", flush=True)
        result = run_processes(config, args.processes, timeout=300.0 + config.warmup + config.duration)
        after_kib = harness.rss_kib(pid)
    summary = summarize(result)
    row = {
        "name": name,
        "profile": profile,
        "protocol": protocol,
        "code": code,
        "stations": config.stations,
        "msgs_per_s": summary["msgs_per_s"],
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
        "errors_in_window": summary["errors_in_window"],
        "error_kinds": summary["error_kinds"],
        "disconnects": summary["disconnects"],
        "server_rss_idle_kib": idle_kib,
        "server_rss_after_kib": after_kib,
        "rss_per_connection_kib": round((after_kib - idle_kib) / max(config.stations, 1), 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "by_action": {a: {k: v[k] for k in ("count", "p50_ms", "p99_ms")} for a, v in summary["by_action"].items()},
    }
    print(
        f"   {row['msgs_per_s']:,.0f} msg/s  p99 {row['p99_ms']} ms  RSS/conn {row['rss_per_connection_kib']} KiB  "
        f"errors {row['errors_in_window']}  load {row['load_before'][0]}",
        flush=True,
    )
    return row


def _commit(checkout: Path) -> str:
    done = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "?"


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.1f} ({min(values):,.1f}-{max(values):,.1f})"


def report(data: dict[str, Any]) -> str:
    rows = data["rows"]
    table_rows = []
    codes = [c for c in (BASELINE, CURRENT) if any(r.get("code", CURRENT) == c for r in rows)]
    for profile, protocol, code in itertools.product(PROFILES, VERSIONS, codes):
        runs = [r for r in rows if (r["profile"], r["protocol"], r.get("code", CURRENT)) == (profile, protocol, code)]
        if runs:
            table_rows.append(
                [
                    profile,
                    protocol,
                    *([code] if len(codes) > 1 else []),
                    runs[0]["stations"],
                    len(runs),
                    _spread([r["msgs_per_s"] for r in runs]),
                    _spread([r["p99_ms"] for r in runs]),
                    _spread([r["rss_per_connection_kib"] for r in runs]),
                    sum(r["errors_in_window"] for r in runs),
                ]
            )
    headers = [
        "profile",
        "protocol",
        *(["code"] if len(codes) > 1 else []),
        "stations",
        "runs",
        "msg/s median (range)",
        "p99 ms median (range)",
    ]
    headers += ["RSS/conn KiB median (range)", "errors"]
    loads = [r["load_before"][0] for r in rows]
    offered = data["settings"]["realistic_stations"] * data["settings"]["speed"] * real_station_msgs_per_s()
    st, m = data["settings"], data["machine"]
    return (
        "# OCPP 1.6 vs 2.0.1 on one replica\n\n"
        + harness.table(headers, table_rows)
        + f"\nInterleaved rounds ({st['runs']}), fresh replica and database per run; stress is closed-loop "
        f"(msg/s is the capacity), realistic runs {st['realistic_stations']} stations at speed {st['speed']:g}, "
        f"offering about {offered:,.0f} msg/s (below that, the replica fell behind; p99 is the figure). Window "
        f"{st['duration']:g} s. Postgres fsync=on.\n\n"
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), shared with other engineers' work: 1-minute load "
        f"average {min(loads):.2f}-{max(loads):.2f} at the runs' starts. RSS/conn is the server's growth from idle "
        "over the stations of a short run (allocator and caches included), so it is an upper bound.\n\n"
        + (
            f"Code: baseline = {data['baseline']} at {data['commits'][BASELINE]}, this = {data['commits'][CURRENT]} "
            "(plus uncommitted changes, if any), alternating per configuration.\n\n"
            if len(codes) > 1
            else ""
        )
        + f"Reproduce: `python benchmarks/bench_versions.py --runs {st['runs']} --stress-stations "
        f"{st['stress_stations']} --realistic-stations {st['realistic_stations']} --speed {st['speed']:g} "
        f"--duration {st['duration']:g}{' --baseline ' + data['baseline'] if len(codes) > 1 else ''}"
        f" --profiles {' '.join(st.get('profiles', PROFILES))}`\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="rounds (each runs all four configurations)")
    parser.add_argument("--stress-stations", type=int, default=100)
    parser.add_argument("--realistic-stations", type=int, default=500)
    parser.add_argument("--speed", type=float, default=90.0, help="realistic time compression")
    parser.add_argument("--duration", type=float, default=10.0, help="measurement window per run (s)")
    parser.add_argument("--warmup", type=float, default=3.0, help="stress warm-up (realistic: 1800 s / speed)")
    parser.add_argument("--processes", type=int, default=1, help="simulator processes")
    parser.add_argument("--baseline", type=Path, default=None, help="a checkout whose csms to measure alongside")
    parser.add_argument("--profiles", nargs="+", choices=PROFILES, default=list(PROFILES), help="profiles to run")
    args = parser.parse_args()
    raise_fd_limit()
    log_dir = Path(tempfile.mkdtemp(prefix="csms-bench-"))
    rows: list[dict[str, Any]] = []
    started = time.time()
    with harness.postgres() as pg:
        for round_no in range(args.runs):
            versions = VERSIONS if round_no % 2 == 0 else VERSIONS[::-1]
            codes = (CURRENT, BASELINE) if args.baseline else (CURRENT,)
            codes = codes if round_no % 2 == 0 else codes[::-1]
            for profile, protocol, code in itertools.product(args.profiles, versions, codes):
                name = f"r{round_no}{profile[:2]}{protocol[4:].replace('.', '')}{code[0]}"
                try:
                    rows.append(measure(pg, name, profile, protocol, args, log_dir, code))
                except Exception as exc:  # e.g. another process took the free port first: run it once more
                    print(f"   {name} failed ({exc!r}); once more", flush=True)
                    rows.append(measure(pg, name + "x", profile, protocol, args, log_dir, code))
    data = {
        "benchmark": "versions",
        "machine": harness.machine(),
        "settings": {
            k: getattr(args, k)
            for k in (
                "runs",
                "profiles",
                "stress_stations",
                "realistic_stations",
                "speed",
                "duration",
                "warmup",
                "processes",
            )
        },
        "baseline": str(args.baseline) if args.baseline else None,
        "commits": {
            CURRENT: _commit(Path(__file__).parent),
            BASELINE: _commit(args.baseline) if args.baseline else None,
        },
        "elapsed_s": round(time.time() - started),
        "rows": rows,
    }
    markdown = report(data)
    json_path, md_path = harness.write_results("versions", data, markdown)
    print()
    print(markdown)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
