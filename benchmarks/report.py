"""Summary of the latest results of every benchmark against the ARCHITECTURE.md section-5 targets.

    python benchmarks/report.py [--results benchmarks/results] [--no-write]

Reads the newest `<name>-<UTC stamp>.json` of throughput, connections, realistic, scale and every failover*/
drain* benchmark, plus group_commit.json, and prints a markdown summary (also written to
benchmarks/results/SUMMARY.md): each figure next to its target with a verdict, the command that reproduces
it, the machine the figures came from, and links to the PNG plots when `plots.py` has made them.
A benchmark without results shows as "no results" rather than failing the report.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import RESULTS_DIR, latest_results, machine, table

MET, NOT_MET, PARTIAL, MISSING = "met", "**not met**", "partial", "no results"
_STAMPED = re.compile(r"^(?P<name>.+)-(?P<stamp>\d{8}-\d{6})\.json$")


@dataclass
class Row:
    what: str
    target: str
    measured: str
    verdict: str
    source: str = ""
    command: str = ""


# --------------------------------------------------------------------------- reading results


def _latest(results: Path, name: str) -> tuple[Path, dict[str, Any]] | None:
    try:
        return latest_results(name, results)
    except (OSError, json.JSONDecodeError):
        return None


def _headline(json_path: Path) -> str:
    """The "Headline:" line of the .md written next to a result (markdown emphasis dropped), or ""."""
    try:
        for line in json_path.with_suffix(".md").read_text().splitlines():
            if line.startswith("Headline:"):
                return line.removeprefix("Headline:").strip().replace("**", "")
    except OSError:
        pass
    return ""


def _reproduce(json_path: Path) -> str:
    try:
        for line in json_path.with_suffix(".md").read_text().splitlines():
            if line.startswith("Reproduce:"):
                return line.removeprefix("Reproduce:").strip().strip("`")
    except OSError:
        pass
    return ""


def _find(data: Any, *needles: str, depth: int = 3) -> Any:
    """First value (breadth-first, `depth` levels of dicts) whose key contains one of `needles`."""
    level = [data]
    for _ in range(depth):
        deeper = []
        for item in level:
            if not isinstance(item, dict):
                continue
            for key, value in item.items():
                if any(n in key.lower() for n in needles) and not isinstance(value, (dict, list)):
                    return value
                if isinstance(value, dict):
                    deeper.append(value)
        level = deeper
    return None


def _short(data: dict[str, Any]) -> str:
    """A marker for results from a run too short to be a measurement (a smoke test of the benchmark)."""
    duration = _num(data.get("settings", {}).get("duration"))
    return " (smoke-size run, not a measurement)" if duration is not None and duration < 10 else ""


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# --------------------------------------------------------------------------- one row per target


def connections_row(results: Path) -> Row:
    row = Row("idle connected stations per replica", "20,000 with <= 1 GiB RSS", "-", MISSING)
    row.command = "python benchmarks/bench_connections.py --sizes 1000,5000,10000,20000"
    found = _latest(results, "connections")
    if found is None:
        return row
    path, data = found
    best = max(data["rows"], key=lambda r: r["connected"])
    rss_mib = best["server_rss_connected_kib"] / 1024
    per_conn = best["server_rss_per_connection_kib"]
    projected = best["server_rss_before_kib"] / 1024 + per_conn * 20_000 / 1024
    row.measured = (
        f"{best['connected']:,} held at {rss_mib:,.0f} MiB ({per_conn} KiB/conn); 20,000 projected "
        f"{projected:,.0f} MiB; open-file limit {data.get('fd_limit', '?')}"
    )
    if best["connected"] >= 20_000:
        row.verdict = MET if rss_mib <= 1024 else NOT_MET
    else:
        row.verdict = f"{PARTIAL}: projection {'within' if projected <= 1024 else 'over'} 1 GiB"
    row.verdict += _short({"settings": {"duration": data["settings"].get("hold")}})
    row.source, row.command = path.name, _reproduce(path) or row.command
    return row


def throughput_rows(results: Path) -> list[Row]:
    row = Row("sustained msg/s per replica, durable writes", ">= 5,000 msg/s, p99 <= 50 ms", "-", MISSING)
    row.command = "python benchmarks/bench_throughput.py --stations 100 --duration 15"
    found = _latest(results, "throughput")
    if found is None:
        return [row]
    path, data = found
    runs = {r["label"]: r["summary"] for r in data["runs"]}
    echo = next((s for label, s in runs.items() if label.startswith("echo")), None)
    on = runs.get("csms group commit on") or next(s for label, s in runs.items() if label.startswith("csms"))
    rate, p99 = on["msgs_per_s"], on["p99_ms"]
    ratio = f", {rate / echo['msgs_per_s']:.2f}x the echo ceiling ({echo['msgs_per_s']:,.0f}/s)" if echo else ""
    row.measured = f"{rate:,.0f} msg/s, p99 {p99} ms{ratio}"
    row.verdict = (MET if rate >= 5000 and p99 <= 50 else NOT_MET) + _short(data)
    row.source, row.command = path.name, _reproduce(path) or row.command
    return [row]


def scale_row(results: Path) -> Row:
    row = Row("3 replicas vs 1", ">= 2.7x throughput", "-", MISSING, command="python benchmarks/bench_scale.py")
    found = _latest(results, "scale")
    if found is None:
        return row
    path, data = found
    one, three = data["runs"]
    row.measured = (
        f"{data['ratio']:.2f}x raw ({three['summary']['msgs_per_s']:,.0f} vs {one['summary']['msgs_per_s']:,.0f} "
        f"msg/s); per replica-CPU-s {three['msgs_per_replica_cpu_s']:,.0f} vs {one['msgs_per_replica_cpu_s']:,.0f}"
        f" -> projected {data['projected_ratio']:.2f}x with a core per replica"
    )
    if data["ratio"] >= data.get("target_ratio", 2.7):
        row.verdict = MET
    elif data["projected_ratio"] >= data.get("target_ratio", 2.7):
        row.verdict = f"{PARTIAL}: raw ratio is core contention; projection meets it"
    else:
        row.verdict = NOT_MET
    row.verdict += _short(data)
    row.source, row.command = path.name, _reproduce(path) or row.command
    return row


def _failover_files(results: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    """Latest file of each failover*/drain* benchmark name."""
    latest: dict[str, tuple[str, Path]] = {}
    for path in [*results.glob("failover*.json"), *results.glob("drain*.json")]:
        match = _STAMPED.match(path.name)
        name, stamp = (match["name"], match["stamp"]) if match else (path.stem, "")
        if name not in latest or stamp > latest[name][0]:
            latest[name] = (stamp, path)
    files = []
    for name, (_, path) in sorted(latest.items()):
        try:
            files.append((name, path, json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError):
            continue
    return files


def failover_rows(results: Path) -> list[Row]:
    kill = Row(
        "replica SIGKILL, 5,000 stations owned",
        "all reclaimed <= 10 s after reconnect; 0 lost, 0 duplicated transactions",
        "-",
        MISSING,
    )
    drain = Row("replica drain (SIGTERM)", "all stations moved, 0 failed in-flight commands", "-", MISSING)
    for name, path, data in _failover_files(results):
        sections = [("drain", data.get("drain")), ("kill", data.get("kill") or data.get("sigkill"))]
        if not any(isinstance(part, dict) for _, part in sections):
            sections = [("drain" if "drain" in name else "kill", data)]
        for kind, part in sections:
            if not isinstance(part, dict):
                continue
            row = drain if kind == "drain" else kill
            row.verdict = _failover_verdict(kind, part)
            row.measured = _headline(path) or _failover_figures(kind, part)
            row.source, row.command = path.name, _reproduce(path) or f"see {path.with_suffix('.md').name}"
    return [kill, drain]


def _failover_figures(kind: str, data: dict[str, Any]) -> str:
    keys = ("stations", "reclaim", "lost", "duplicat") if kind == "kill" else ("stations", "moved", "failed")
    parts = [f"{k}: {_find(data, k)}" for k in keys if _find(data, k) is not None]
    return "; ".join(parts) or "see source"


def _failover_verdict(kind: str, data: dict[str, Any]) -> str:
    explicit = _find(data, "passed", "target_met", "ok")
    if isinstance(explicit, bool):
        return MET if explicit else NOT_MET
    if kind == "kill":
        reclaim, lost, dup = (_num(_find(data, k)) for k in ("reclaim", "lost", "duplicat"))
        if reclaim is None or lost is None or dup is None:
            return "see source"
        return MET if reclaim <= 10 and lost == 0 and dup == 0 else NOT_MET
    failed = _num(_find(data, "failed"))
    return "see source" if failed is None else (MET if failed == 0 else NOT_MET)


def ownership_row() -> Row:
    return Row(
        "ownership",
        "never two replicas serving one station at once",
        "checked by fence tokens in the cluster chaos tests, not by a benchmark",
        "see tests",
        command="pytest tests/cluster",
    )


TARGET_ROWS: tuple[Callable[[Path], Row | list[Row]], ...] = (
    connections_row,
    throughput_rows,
    scale_row,
    failover_rows,
)


# --------------------------------------------------------------------------- figures without a section-5 target


def other_rows(results: Path) -> list[list[str]]:
    rows: list[list[str]] = []
    found = _latest(results, "realistic")
    if found is not None:
        path, data = found
        best = data.get("largest_passing")
        figure = (
            f"{best['real_station_equivalents']:,} real-station equivalents ({best['stations']:,} stations x speed "
            f"{best['speed']:g}, {best['msgs_per_s']:,.0f} msg/s), p99 {best['p99_ms']} ms"
            if best
            else "no step passed"
        )
        if best and all(r["passed"] for r in data["rows"]):
            figure += " (every step passed: a floor)"
        figure += _short(data)
        rows.append(["largest realistic fleet on one replica with p99 < 100 ms", figure, path.name, _reproduce(path)])
    else:
        rows.append(["largest realistic fleet on one replica with p99 < 100 ms", MISSING, "", ""])
    gc_path = results / "group_commit.json"
    try:
        gc = json.loads(gc_path.read_text())
        modes = {r["mode"]: r for r in gc["results"]}
        on = max((r for m, r in modes.items() if m.startswith("group commit")), key=lambda r: r["rows_per_s"])
        off = next((r for m, r in modes.items() if not m.startswith("group commit")), None)
        figure = f"{on['rows_per_s']:,.0f} durable writes/s ({on['mode']}, p99 {on['p99_ms']} ms)"
        if off:
            gain = on["rows_per_s"] / off["rows_per_s"]
            figure += f" vs {off['rows_per_s']:,.0f}/s with one transaction each ({gain:.1f}x)"
        rows.append(["storage group commit", figure, gc_path.name, "python benchmarks/bench_group_commit.py"])
    except (OSError, json.JSONDecodeError, KeyError, ValueError, StopIteration):
        rows.append(["storage group commit", MISSING, "", "python benchmarks/bench_group_commit.py"])
    return rows


# --------------------------------------------------------------------------- the summary


def _source_machine(results: Path) -> dict[str, Any] | None:
    for name in ("throughput", "connections", "realistic", "scale"):
        found = _latest(results, name)
        if found is not None and isinstance(found[1].get("machine"), dict):
            return dict(found[1]["machine"])
    return None


def summary(results: Path = RESULTS_DIR) -> str:
    """The SUMMARY.md text."""
    targets: list[Row] = []
    for make in TARGET_ROWS:
        made = make(results)
        targets.extend(made if isinstance(made, list) else [made])
    targets.append(ownership_row())
    here = machine()
    source = _source_machine(results) or here
    cores, model = source.get("cpus"), source.get("cpu_model") or "unknown CPU"
    lines = [
        "# Benchmark summary",
        "",
        "Latest result of each benchmark against the targets of ARCHITECTURE.md section 5 "
        "(generated by `python benchmarks/report.py`).",
        "",
        f"**Machine caveat:** the figures come from a {cores}-core machine ({model}, Linux "
        f"{source.get('kernel', '?')}, Python {source.get('python', '?')}). The replica(s), Postgres (fsync on), "
        "etcd and the load generator all share those cores, so every figure is a floor for a deployment "
        "where the load comes from elsewhere; each benchmark's own report gives CPU % per process.",
        "",
        table(
            ["what", "target", "measured", "verdict", "source", "reproduce"],
            [
                [r.what, r.target, r.measured, r.verdict, r.source, f"`{r.command}`" if r.command else ""]
                for r in targets
            ],
        ),
        "## Other figures",
        "",
        table(
            ["what", "measured", "source", "reproduce"],
            [[a, b, c, f"`{d}`" if d else ""] for a, b, c, d in other_rows(results)],
        ),
    ]
    plots = [p for p in sorted(results.glob("*.png"))]
    if plots:
        lines += ["## Plots", "", *[f"![{p.stem}]({p.name})" for p in plots], ""]
    if source is not here and (source.get("cpus"), source.get("cpu_model")) != (here["cpus"], here["cpu_model"]):
        lines += [f"(Report generated on a different machine: {here['cpus']} cores, {here['cpu_model']}.)", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    text = summary(args.results)
    print(text)
    if not args.no_write:
        path = args.results / "SUMMARY.md"
        path.write_text(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
