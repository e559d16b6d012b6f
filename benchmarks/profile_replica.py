"""Profile one `csms serve` replica under load with py-spy (sampling, no code changes in the server).

    python benchmarks/profile_replica.py stress [--stations 100 --duration 10 --out /tmp/csms-stress]
    python benchmarks/profile_replica.py connect [--stations 2000 --out /tmp/csms-connect]
    python benchmarks/profile_replica.py stress --no-profile      # just the numbers, for a quick A/B
    python benchmarks/profile_replica.py stress --protocol ocpp2.0.1   # the same mix spoken in 2.0.1
    python benchmarks/profile_replica.py connect --native         # C frames too: shows the garbage collector

`stress` drives the group-commit-on case of `bench_throughput.py` (closed loop, same mix) against a fresh
replica and private durable Postgres; `connect` connects `--stations` idle stations like `bench_connections.py`
and profiles only the connect phase. py-spy records the replica for the measured window into `<out>.txt`
(collapsed stacks: feed them to speedscope or flamegraph.pl), and the script prints and writes to
`<out>.top.txt` the hottest functions (self and inclusive share of samples), plus msg/s and server CPU per
message (stress) or per connected station and RSS per connection (connect). py-spy itself takes CPU on this
2-core machine, so compare rates with `--no-profile` runs. Needs py-spy (dev extra) and ptrace rights (root).
"""

from __future__ import annotations

import argparse
import collections
import shutil
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


class Recorder:
    """py-spy attached to a pid for one window; `stop()` waits for it to write its files."""

    def __init__(self, pid: int, out: Path, seconds: float, rate: int, native: bool = False, gil: bool = False) -> None:
        self.out = out
        spy = shutil.which("py-spy")
        if spy is None:
            raise SystemExit("py-spy not found: pip install py-spy (it is in the dev extra)")
        common = [spy, "record", "--pid", str(pid), "--rate", str(rate), "--duration", str(int(seconds) + 1)]
        common += ["--native"] if native else ["--nonblocking"]
        common += ["--gil"] if gil else []
        self._procs = [
            subprocess.Popen([*common, "--format", "raw", "--output", str(out.with_suffix(".txt"))]),
        ]

    def stop(self) -> None:
        for proc in self._procs:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait()


def hottest(collapsed: Path, top: int) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed ("raw") output."""
    self_count: collections.Counter[str] = collections.Counter()
    incl_count: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        total += count
        self_count[frames[-1]] += count
        for frame in set(frames):
            incl_count[frame] += count
    if not total:
        return "(no samples)\n"
    lines = [f"{total} samples", "", "self %  function"]
    lines += [f"{100 * n / total:6.1f}  {name}" for name, n in self_count.most_common(top)]
    lines += ["", "incl %  function (csms code and the libraries it calls)"]
    interesting = [(name, n) for name, n in incl_count.most_common() if _interesting(name)]
    lines += [f"{100 * n / total:6.1f}  {name}" for name, n in interesting[:top]]
    return "\n".join(lines) + "\n"


def _short(frame: str) -> str:
    """'send_message (trio_websocket/_impl.py:123)' -> 'send_message (trio_websocket/_impl.py)'."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def _interesting(name: str) -> bool:
    return not any(s in name for s in ("<module>", "run (trio/_core/_run.py)", "unrolled_run", "main ("))


STATEMENTS = """
SELECT round(total_exec_time::numeric, 1) AS total_ms, calls, rows,
       round((total_exec_time / GREATEST(calls, 1))::numeric, 3) AS mean_ms,
       left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time DESC LIMIT 25
"""
COMMITS = "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()"


def statements_report(pg: Any, database: str, messages: float) -> str:
    """What Postgres executed over the window (pg_stat_statements), per OCPP message: which statements its CPU
    goes to, and how many statements (each one a round trip or a pipelined execution) and commits a message
    costs."""
    rows = pg.psql(STATEMENTS, database=database)
    totals = pg.psql(
        "SELECT sum(calls), round(sum(total_exec_time)::numeric, 1) FROM pg_stat_statements", database=database
    )
    commits = pg.psql(COMMITS, database=database)
    return (
        f"Postgres over the window ({messages:,.0f} messages), by execution time:\n{rows}\n"
        f"all statements (calls, ms): {totals.strip()}; commits, rollbacks: {commits.strip()}"
    )


def stress(args: argparse.Namespace, pg: Any, log_dir: Path) -> None:
    database = f"prof_stress_{int(time.time())}"
    url = pg.create_database(database)
    if args.statements:
        pg.psql("CREATE EXTENSION pg_stat_statements", database=database)
    with harness.replica(url, log_dir) as node:
        harness.register_id_tag(node)
        assert node.proc is not None
        pid = node.proc.pid
        meter = harness.CpuMeter({"server": pid}, trees={"postgres": pg.pid})
        config = FleetConfig(
            url=node.ocpp_url,
            stations=args.stations,
            profile="stress",
            protocol=args.protocol,
            duration=args.duration,
            warmup=args.warmup,
            id_tag=harness.ID_TAG,
            connect_concurrency=100,
            prefix="prof-",
        )
        cpu: dict[str, float] = {}
        recorder: list[Recorder] = []

        def window() -> None:
            time.sleep(config.warmup)
            if args.statements:
                pg.psql("SELECT pg_stat_statements_reset(); SELECT pg_stat_reset();", database=database)
            meter.start()
            if args.profile:
                recorder.append(Recorder(pid, args.out, config.duration, args.rate, args.native, args.gil))
            time.sleep(config.duration)
            cpu.update(meter.stop())

        result = run_processes(config, args.processes, on_go=window, timeout=600)
        for r in recorder:
            r.stop()
        s = summarize(result)
        rate = s["msgs_per_s"] or 1.0
        if args.statements:
            print(statements_report(pg, database, rate * config.duration))
    print(
        f"stress: {s['msgs_per_s']:,.0f} msg/s  p50 {s['p50_ms']} ms  p99 {s['p99_ms']} ms  "
        f"errors {s['errors_total']}  cpu {cpu}  server CPU/msg {10 * cpu.get('server', 0) / rate:.3f} ms"
    )
    for action, hist in s["by_action"].items():
        print(f"   {action:<20} p50 {hist['p50_ms']} ms  p99 {hist['p99_ms']} ms  n={hist.get('count', '')}")


def connect(args: argparse.Namespace, pg: Any, log_dir: Path) -> None:
    url = pg.create_database(f"prof_connect_{int(time.time())}")
    with harness.replica(url, log_dir) as node:
        assert node.proc is not None
        pid = node.proc.pid
        time.sleep(1.0)
        before = harness.rss_kib(pid)
        meter = harness.CpuMeter({"server": pid}, trees={"postgres": pg.pid})
        reading: dict[str, Any] = {}

        def connected(report: dict[str, Any]) -> None:
            reading["cpu"] = meter.stop()
            reading["seconds"] = report["seconds"]
            time.sleep(2.0)
            reading["after"] = harness.rss_kib(pid)

        config = FleetConfig(
            url=node.ocpp_url,
            stations=args.stations,
            profile="idle",
            duration=2.0,
            warmup=0.0,
            connectors=1,
            prefix="profc-",
            connect_concurrency=200,
            settle_timeout=600.0,
        )
        recorder = Recorder(pid, args.out, 600, args.rate, args.native) if args.profile else None
        meter.start()
        result = run_processes(config, args.processes, on_connected=connected, timeout=900)
        if recorder is not None:
            # py-spy runs for --duration; stop it now by terminating (it still writes what it has).
            for proc in recorder._procs:
                proc.send_signal(2)
            recorder.stop()
    s = summarize(result)
    n = max(s["connect"]["connected"], 1)
    seconds = reading["seconds"] or 1.0
    server_cpu_s = reading["cpu"].get("server", 0) / 100 * seconds
    print(
        f"connect: {n} stations in {seconds:.1f} s ({s['connect']['rate_per_s']}/s)  cpu {reading['cpu']}  "
        f"server CPU/station {1000 * server_cpu_s / n:.2f} ms  RSS/conn {(reading['after'] - before) / n:.1f} KiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("stress", "connect"))
    parser.add_argument("--stations", type=int, default=None, help="stress: 100, connect: 2000")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--processes", type=int, default=None, help="simulator processes (stress 1, connect 2)")
    parser.add_argument("--protocol", choices=("ocpp1.6", "ocpp2.0.1"), default="ocpp1.6", help="stress only")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=None, help="output path stem (default /tmp/csms-<mode>)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--native", action="store_true", help="include C frames (e.g. the garbage collector)")
    parser.add_argument(
        "--gil",
        action="store_true",
        help="sample only while the replica holds the GIL: its Python CPU, not time in (or waiting for a CPU inside) "
        "a system call, which py-spy otherwise charges to the caller (perf showed the kernel at ~5 %% of the replica's "
        "CPU while py-spy put ~20 %% in socket sends)",
    )
    parser.add_argument(
        "--statements", action="store_true", help="stress: Postgres statements over the window (pg_stat_statements)"
    )
    args = parser.parse_args()
    stress_mode = args.mode == "stress"
    args.stations = args.stations or (100 if stress_mode else 2000)
    args.processes = args.processes or (1 if stress_mode else 2)
    args.out = (args.out or Path(f"/tmp/csms-{args.mode}")).with_suffix("")
    raise_fd_limit()
    log_dir = Path(tempfile.mkdtemp(prefix="csms-prof-"))
    settings = {"shared_preload_libraries": "pg_stat_statements"} if args.statements else None
    with harness.postgres(settings) as pg:
        (stress if stress_mode else connect)(args, pg, log_dir)
    collapsed = args.out.with_suffix(".txt")
    if args.profile and collapsed.exists():
        report = hottest(collapsed, args.top)
        args.out.with_suffix(".top.txt").write_text(report)
        print(report)
        print(f"collapsed stacks: {collapsed} (flame graph: py-spy's --format flamegraph, or speedscope)")


if __name__ == "__main__":
    main()
