"""Password guessing vs everyone else: p99 of normal stations' calls with and without 8 guessers.

    python benchmarks/bench_auth_abuse.py [--stations 50] [--guessers 8] [--duration 10] [--warmup 2] [--repeats 3]

One private durable Postgres; per scenario a fresh database and `csms serve` replica with the stations
registered with passwords. A closed-loop stress fleet of `--stations` (its own process, HTTP Basic) is measured
while, in another process, `--guessers` tasks open handshakes for one victim station with wrong passwords as
fast as the server answers (an attacker ignores Retry-After). Scenarios:
  1. no attack;
  2. attack, throttling on (the defaults: 429 before hashing);
  3. attack, throttling off (CSMS_AUTH_*FAILURES_PER_MINUTE=0: every guess costs a PBKDF2, as before #9).
Reports the median and range over interleaved repeats of the fleet's msg/s and p50/p99, the PBKDF2 hashes/s
burnt (csms_station_password_hashes_total), guesses/s, and CPU.
Writes benchmarks/results/auth-abuse-<UTC time>.json and .md.

Caveat: on a 2-core machine the replica, its hashing threads, Postgres, the fleet and the guessers share the
cores (CPU % is of one core).
"""

from __future__ import annotations

import argparse
import base64
import json
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
from benchmarks.simulator import FleetConfig, raise_fd_limit, run_processes, summarize
from devcluster.postgres import PostgresServer

PASSWORD = "fleet-password-0123"
VICTIM = "victim-000001"
HASHES = "csms_station_password_hashes_total"
ATTACK_LEAD = 5.0  # seconds the guessers run before the fleet's warm-up starts
SCENARIOS: list[tuple[str, bool, dict[str, str]]] = [
    ("no attack", False, {}),
    ("attack, throttling on", True, {}),
    ("attack, throttling off", True, {"auth_failures_per_minute": "0", "auth_source_failures_per_minute": "0"}),
]


async def _guess(url: str, workers: int, seconds: float) -> dict[str, int]:
    """`workers` loops of wrong-password handshakes for `seconds`; counts answers by HTTP status."""
    import trio
    from trio_websocket import ConnectionRejected, open_websocket_url

    counts: dict[str, int] = {}
    station_id = url.rstrip("/").rsplit("/", 1)[1]
    token = base64.b64encode(f"{station_id}:wrong-guess".encode()).decode()
    headers = [(b"Authorization", f"Basic {token}".encode())]

    async def worker() -> None:
        while True:
            try:
                async with open_websocket_url(url, subprotocols=["ocpp1.6"], extra_headers=headers):
                    status = "101"
            except ConnectionRejected as refused:
                status = str(refused.status_code)
            except OSError as exc:
                status = type(exc).__name__
            counts[status] = counts.get(status, 0) + 1

    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for _ in range(workers):
                nursery.start_soon(worker)
    return counts


def _start_guessers(url: str, workers: int, seconds: float) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "benchmarks.bench_auth_abuse", "--guess", url]
    cmd += ["--guessers", str(workers), "--duration", str(seconds)]
    env = {**os.environ, "PYTHONPATH": str(harness.REPO_ROOT)}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=harness.REPO_ROOT)


def _scenario(
    pg: PostgresServer,
    index: int,
    label: str,
    attack: bool,
    settings: dict[str, str],
    args: argparse.Namespace,
    log_dir: Path,
) -> dict[str, Any]:
    url = pg.create_database(f"bench_auth_{index}")
    with harness.replica(url, log_dir, registration="known", **settings) as node:
        assert node.proc is not None
        harness.register_id_tag(node)
        prefix = f"auth{index}-"
        for i in range(args.stations):
            harness.api(node, "PUT", f"/api/v1/stations/{prefix}{i:06d}", {"password": PASSWORD})
        harness.api(node, "PUT", f"/api/v1/stations/{VICTIM}", {"password": "the-real-one-0123"})
        config = FleetConfig(
            url=node.ocpp_url,
            stations=args.stations,
            profile="stress",
            duration=args.duration,
            warmup=args.warmup,
            prefix=prefix,
            password=PASSWORD,
            id_tag=harness.ID_TAG,
        )
        cpu: dict[str, float] = {}
        window: dict[str, Any] = {}

        guessers: list[subprocess.Popen[str]] = []

        def on_connected(_: dict[str, Any]) -> None:
            """Start the attack before "go" and let it reach its steady state (process started, burst spent)."""
            if attack:
                seconds = ATTACK_LEAD + args.warmup + args.duration
                guessers.append(_start_guessers(f"{node.ocpp_url}/{VICTIM}", args.guessers, seconds))
                time.sleep(ATTACK_LEAD)

        def on_go() -> None:
            pids = {"server": node.proc.pid, **({"guessers": guessers[0].pid} if guessers else {})}
            meter = harness.CpuMeter(pids, trees={"postgres": pg.pid})
            time.sleep(args.warmup)
            hashes0 = harness.metric_value(node, HASHES)
            meter.start()
            time.sleep(args.duration)
            cpu.update(meter.stop())
            window["hashes"] = harness.metric_value(node, HASHES) - hashes0
            if guessers:
                out, _ = guessers[0].communicate(timeout=60)
                window["guesses"] = json.loads(out)

        print(f"-- {label}: {args.stations} stations, {args.duration:g}s ...", flush=True)
        result = run_processes(config, 1, on_connected=on_connected, on_go=on_go, timeout=config.settle_timeout + 300)
    summary = summarize(result)
    guesses = window.get("guesses", {})
    seconds = ATTACK_LEAD + args.warmup + args.duration
    row = {
        "label": label,
        "summary": summary,
        "cpu_pct": cpu,
        "hashes_per_s": round(window["hashes"] / args.duration, 1),
        "guesses": guesses,
        "guesses_per_s": round(sum(guesses.values()) / seconds, 1),
        "result": result,
    }
    print(
        f"   {summary['msgs_per_s']:>7,.0f} msg/s  p50 {summary['p50_ms']} ms  p99 {summary['p99_ms']} ms  "
        f"hashes/s {row['hashes_per_s']}  guesses {guesses}  cpu {cpu}",
        flush=True,
    )
    return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit()
    log_dir = Path(tempfile.mkdtemp(prefix="csms-bench-"))
    runs = []
    with harness.postgres() as pg:
        for repeat in range(args.repeats):  # interleaved, so a slow spell of a shared machine hits every scenario
            for i, scenario in enumerate(SCENARIOS):
                row = _scenario(pg, repeat * len(SCENARIOS) + i, *scenario, args, log_dir)
                row["load_average"] = round(os.getloadavg()[0], 1)
                runs.append(row)
    return {
        "benchmark": "auth-abuse",
        "machine": harness.machine(),
        "settings": {k: getattr(args, k) for k in ("stations", "guessers", "duration", "warmup", "repeats")},
        "postgres": "private server, fsync=on, synchronous_commit=on (durable)",
        "runs": runs,
    }


def _spread(values: list[float]) -> str:
    """Median and range of the repeats: never the best run alone."""
    return f"{statistics.median(values):,.1f} ({min(values):,.1f}-{max(values):,.1f})"


def report(data: dict[str, Any]) -> str:
    rows = []
    for label, _, _ in SCENARIOS:
        runs = [r for r in data["runs"] if r["label"] == label]
        rows.append(
            [
                label,
                _spread([r["summary"]["msgs_per_s"] for r in runs]),
                _spread([r["summary"]["p50_ms"] for r in runs]),
                _spread([r["summary"]["p99_ms"] for r in runs]),
                sum(r["summary"]["errors_in_window"] for r in runs),
                _spread([r["hashes_per_s"] for r in runs]),
                _spread([r["guesses_per_s"] for r in runs]),
                _spread([r["cpu_pct"].get("server", 0.0) for r in runs]),
                _spread([r["cpu_pct"].get("guessers", 0.0) for r in runs]),
                _spread([r["load_average"] for r in runs]),
            ]
        )
    headers = ["scenario", "fleet msg/s", "p50 ms", "p99 ms", "errors", "PBKDF2/s", "guesses/s", "replica CPU %"]
    headers += ["guessers CPU %", "load avg"]
    m, st = data["machine"], data["settings"]
    return (
        "# Authentication abuse: normal stations' latency under password guessing\n\n"
        f"Median (min-max) of {st['repeats']} interleaved runs per scenario.\n\n"
        + harness.table(headers, rows)
        + f"\n{st['stations']} stations in closed loop (stress mix, HTTP Basic), {st['duration']} s window after "
        f"{st['warmup']} s warm-up; {st['guessers']} guessers on one station id with wrong passwords, ignoring "
        f"Retry-After, started {ATTACK_LEAD:g} s before the warm-up. PBKDF2/s is the replica's "
        "csms_station_password_hashes_total rate in the window.\n\n"
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), Linux {m['kernel']}, Python {m['python']}. "
        "The replica, Postgres, the fleet and the guessers share these cores (load avg: 1-minute, after each run).\n\n"
        f"Reproduce: `python benchmarks/bench_auth_abuse.py --stations {st['stations']} --guessers {st['guessers']} "
        f"--duration {st['duration']} --warmup {st['warmup']} --repeats {st['repeats']}`\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--guessers", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="measurement window per scenario (s)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of every scenario")
    parser.add_argument("--guess", metavar="URL", help=argparse.SUPPRESS)  # the guessers' own process
    args = parser.parse_args()
    if args.guess:
        import trio

        print(json.dumps(trio.run(_guess, args.guess, args.guessers, args.duration)), flush=True)
        return
    data = run(args)
    markdown = report(data)
    json_path, md_path = harness.write_results("auth-abuse", data, markdown)
    print()
    print(markdown)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
