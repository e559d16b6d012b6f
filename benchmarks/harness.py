"""What the benchmark scripts share: a durable Postgres, a `csms serve` replica, a stub server subprocess,
/proc readings (RSS, CPU of a process or a process group) and writing results to `benchmarks/results/`.

Everything here is synchronous: the benchmark scripts only orchestrate; the load runs in simulator worker
processes and the server in its own process, so neither starves on the orchestrator's loop.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
API_TOKEN = "bench-token-0123456789:admin"
BEARER = API_TOKEN.split(":")[0]
ID_TAG = "BENCHTAG"
_TICKS = os.sysconf("SC_CLK_TCK")

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.profiles import id_tag_name  # noqa: E402
from benchmarks.simulator import rss_kib  # noqa: E402, F401  (the benchmarks call harness.rss_kib)
from devcluster.postgres import PostgresServer  # noqa: E402
from devcluster.replica import ReplicaProcess  # noqa: E402


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "memory_mib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (0.0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU time of a process and its direct children (Postgres: the postmaster and its backends, which each
    sit in their own session), including children already exited and reaped."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == root:
            # utime + stime + cutime + cstime: a child that exited and was reaped moves its time into the
            # root's c-fields, so the total never goes backwards when a backend exits mid-window.
            total += sum(int(f) for f in fields[11:15]) / _TICKS
        elif int(fields[1]) == root:
            total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


class CpuMeter:
    """CPU% of named processes over a window: `start()`, then `stop()` returns {name: percent of one core}."""

    def __init__(self, pids: dict[str, int], trees: dict[str, int] | None = None) -> None:
        self.pids, self.trees = pids, trees or {}
        self._t0 = 0.0
        self._c0: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        values = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        values.update({name: tree_cpu_seconds(pid) for name, pid in self.trees.items()})
        return values

    def start(self) -> None:
        self._t0, self._c0 = time.monotonic(), self._read()

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._t0
        now = self._read()
        return {name: round(100 * (now[name] - self._c0[name]) / elapsed, 1) for name in now}


def host_cpu_times() -> tuple[float, float, float]:
    """(all, idle, steal) jiffies of the whole machine since boot, from /proc/stat's first line."""
    fields = [float(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    # user nice system idle iowait irq softirq steal
    return sum(fields), fields[3] + fields[4], fields[7]


class MachineMeter:
    """The whole machine over a window: busy and steal, each as a percent of all its cores. Steal is time the
    hypervisor gave another guest while this one had work: the neighbours' share, which no process here shows,
    and one reason the same code measures differently hours apart."""

    def __init__(self) -> None:
        self._t0 = (0.0, 0.0, 0.0)

    def start(self) -> None:
        self._t0 = host_cpu_times()

    def stop(self) -> dict[str, float]:
        total, idle, steal = (now - then for now, then in zip(host_cpu_times(), self._t0, strict=True))
        if total <= 0:
            return {"busy_pct": 0.0, "steal_pct": 0.0}
        return {"busy_pct": round(100 * (total - idle - steal) / total, 1), "steal_pct": round(100 * steal / total, 1)}


def calibration_ms(rounds: int = 5) -> float:
    """Milliseconds a fixed pure-Python workload takes here now (best of ``rounds``): the machine's speed at the
    time of a run, recorded next to its results so runs hours apart can be told apart by the machine too."""
    payload = {"connectorId": 1, "meterValue": [{"sampledValue": [{"value": str(i)} for i in range(12)]}]}
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(2_000):
            json.loads(json.dumps(payload))
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


@contextmanager
def postgres(settings: dict[str, str] | None = None) -> Iterator[PostgresServer]:
    """A private Postgres with durable settings (fsync and synchronous_commit on); its data directory is removed
    afterwards (a 20,000-station run leaves ~0.5 GiB of WAL and tables behind otherwise)."""
    server = PostgresServer(fast=False, settings=settings)
    server.start()
    try:
        yield server
    finally:
        server.close()


@contextmanager
def replica(
    database_url: str, log_dir: Path, node_id: str | None = None, cwd: Path | None = None, **settings: str
) -> Iterator[ReplicaProcess]:
    """One `csms serve` with auto-registration, quiet logs and an admin token; extra CSMS_* as kwargs
    (e.g. etcd_endpoints=... for a cluster member, then give each member its own `node_id`); `cwd`: run the
    code of another tree (an older release, say)."""
    env = {
        **({"PYTHONPATH": str(cwd)} if cwd is not None else {}),
        "CSMS_DATABASE_URL": database_url,
        "CSMS_API_TOKENS": API_TOKEN,
        "CSMS_REGISTRATION": "auto",
        "CSMS_LOG_LEVEL": "warning",
        **{f"CSMS_{name.upper()}": value for name, value in settings.items()},
    }
    node = ReplicaProcess(node_id or f"bench-{int(time.time() * 1000) % 10**8}", env, log_dir=log_dir, cwd=cwd)
    node.start()
    try:
        node.wait_ready(60)
        yield node
    finally:
        node.stop(timeout=30)


def api(node: ReplicaProcess, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {BEARER}"}
    response = httpx.request(method, node.api_url + path, json=body, headers=headers, timeout=30)
    response.raise_for_status()
    return response


def register_id_tag(node: ReplicaProcess, id_tag: str = ID_TAG) -> None:
    api(node, "PUT", f"/api/v1/id-tags/{id_tag}", {"status": "Accepted"})


def register_id_tags(node: ReplicaProcess, count: int) -> None:
    """ID_TAG alone (count <= 1), else the `count` tags the simulator's sessions draw from (`id_tag_name`)."""
    if count <= 1:
        register_id_tag(node)
        return
    headers = {"Authorization": f"Bearer {BEARER}"}
    with httpx.Client(base_url=node.api_url, headers=headers, timeout=30) as client:
        for index in range(count):
            client.put(f"/api/v1/id-tags/{id_tag_name(ID_TAG, index)}", json={"status": "Accepted"}).raise_for_status()


def metric_sum_count(node: ReplicaProcess, name: str) -> tuple[float, float]:
    """(sum, count) of a Prometheus histogram on the replica's /metrics, summed over labels; (0, 0) if absent."""
    try:
        text = httpx.get(node.api_url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return 0.0, 0.0
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(name + "_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(name + "_count"):
            count += float(line.rsplit(" ", 1)[1])
    return total, count


def metric_value(node: ReplicaProcess, name: str) -> float:
    """Sum of every sample of a Prometheus counter or gauge (all label sets) on the replica; 0 if absent."""
    try:
        text = httpx.get(node.api_url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def histogram_buckets(node: ReplicaProcess, name: str, labels: str = "") -> dict[float, float]:
    """Cumulative bucket counts {le: count} of a replica histogram, summed over label sets containing `labels`
    (e.g. 'generation="2"'); subtract two readings to get what happened between them."""
    try:
        text = httpx.get(node.api_url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "_bucket{") and labels in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return buckets


def slow_steps(node: ReplicaProcess) -> dict[str, tuple[float, float]]:
    """Task -> (steps, seconds) of csms_slow_task_step_seconds so far: which tasks held the replica's loop."""
    try:
        text = httpx.get(node.api_url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    found: dict[str, list[float]] = {}
    for line in text.splitlines():
        for kind, at in (("_count{", 0), ("_sum{", 1)):
            if line.startswith("csms_slow_task_step_seconds" + kind):
                task = line.split('task="', 1)[1].split('"', 1)[0]
                found.setdefault(task, [0.0, 0.0])[at] = float(line.rsplit(" ", 1)[1])
    return {task: (steps, seconds) for task, (steps, seconds) in found.items()}


def slow_steps_delta(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], top: int = 5
) -> list[dict[str, Any]]:
    """The tasks that held the loop longest between two readings, with their slow steps and total seconds."""
    rows = []
    for task, (steps, seconds) in after.items():
        steps0, seconds0 = before.get(task, (0.0, 0.0))
        if steps > steps0:
            rows.append({"task": task, "steps": int(steps - steps0), "seconds": round(seconds - seconds0, 3)})
    return sorted(rows, key=lambda row: -row["seconds"])[:top]


def histogram_delta(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """Count and the smallest bucket bound below which all (the worst) observations fell between two readings."""
    delta = {le: after[le] - before.get(le, 0.0) for le in sorted(after)}
    count = delta.get(float("inf"), 0.0)
    worst = next((le for le, n in delta.items() if n >= count), float("inf")) if count else 0.0
    return {"count": int(count), "max_below_s": worst, "over_100ms": int(count - delta.get(0.1, count))}


@contextmanager
def stub_server(mode: str) -> Iterator[tuple[int, int]]:
    """`benchmarks.stub_server` in its own process; yields (pid, port)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "benchmarks.stub_server", "--mode", mode]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"stub server did not start: {line!r}")
        yield proc.pid, int(line.split()[1])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_results(name: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """benchmarks/results/<name>-<UTC timestamp>.json and .md; returns both paths."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    json_path = RESULTS_DIR / f"{name}-{stamp}.json"
    md_path = RESULTS_DIR / f"{name}-{stamp}.md"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path


def latest_results(name: str, results_dir: Path = RESULTS_DIR) -> tuple[Path, dict[str, Any]] | None:
    """The newest `<name>-<UTC stamp>.json` in results_dir (by its stamp, else mtime) and its data; None if none."""
    stamped = re.compile(rf"^{re.escape(name)}-(\d{{8}}-\d{{6}})\.json$")
    candidates = []
    for path in results_dir.glob(f"{name}-*.json"):
        match = stamped.match(path.name)
        if match:
            candidates.append((match.group(1), path.stat().st_mtime, path))
    if not candidates:
        return None
    path = max(candidates)[2]
    return path, json.loads(path.read_text())


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A markdown table (also readable on a terminal)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
