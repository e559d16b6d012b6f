"""PNG plots from the latest results JSON of each benchmark, into benchmarks/results/.

    pip install -e '.[bench]'        # matplotlib
    python benchmarks/plots.py [--results benchmarks/results]

  throughput_latency.png - round-trip latency histogram and CDF of every target of the latest throughput run
  connections_rss.png    - server RSS vs idle connections (with the 20,000 stations / 1 GiB target)
  realistic_p99.png      - p99 vs fleet size in real-station equivalents (with the 100 ms limit)
  scale.png              - msg/s and msg per replica-CPU-second, 1 vs 3 replicas
A benchmark without results is skipped. Prints the files written.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from benchmarks.harness import RESULTS_DIR, latest_results
from benchmarks.latency import _PER_E as BUCKETS_PER_E


def histogram_points(latency: dict[str, Any]) -> tuple[list[float], list[int]]:
    """(bucket midpoints in ms, counts) of a serialized LatencyHistogram, in increasing latency."""
    pairs = sorted((int(k), int(v)) for k, v in latency.get("buckets", {}).items())
    return [math.exp((i + 0.5) / BUCKETS_PER_E) / 1000 for i, _ in pairs], [n for _, n in pairs]


def plot_throughput(data: dict[str, Any], out: Path) -> Path:
    fig, (hist_ax, cdf_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    for run in data["runs"]:
        ms, counts = histogram_points(run["result"]["latency"])
        total = sum(counts)
        if not total:
            continue
        label = f"{run['label']} ({run['summary']['msgs_per_s']:,.0f} msg/s)"
        hist_ax.plot(ms, [n / total for n in counts], label=label, linewidth=1)
        cumulative, seen = [], 0
        for n in counts:
            seen += n
            cumulative.append(seen / total)
        cdf_ax.plot(ms, cumulative, label=label, linewidth=1.2)
    for ax in (hist_ax, cdf_ax):
        ax.set_xscale("log")
        ax.set_xlabel("round trip (ms, log scale)")
        ax.grid(True, which="both", alpha=0.3)
    hist_ax.set_ylabel("fraction of calls per 1 % bucket")
    hist_ax.set_title("Latency histogram")
    cdf_ax.set_ylabel("fraction of calls <= x")
    cdf_ax.axhline(0.99, color="grey", linestyle=":", linewidth=1)
    cdf_ax.axvline(50, color="red", linestyle="--", linewidth=1, label="p99 target 50 ms")
    cdf_ax.set_title("Latency CDF")
    cdf_ax.legend(fontsize=8, loc="lower right")
    st = data["settings"]
    fig.suptitle(f"Throughput, stress profile: {st['stations']} stations, {st['duration']} s window")
    return _save(fig, out / "throughput_latency.png")


def plot_connections(data: dict[str, Any], out: Path) -> Path:
    rows = sorted(data["rows"], key=lambda r: r["connected"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [0] + [r["connected"] for r in rows]
    ys = [rows[0]["server_rss_before_kib"] / 1024] + [r["server_rss_connected_kib"] / 1024 for r in rows]
    ax.plot(xs, ys, marker="o", label="server RSS (measured)")
    for r in rows:
        point = (r["connected"], r["server_rss_connected_kib"] / 1024)
        label = f"{r['server_rss_per_connection_kib']} KiB/conn"
        ax.annotate(label, point, textcoords="offset points", xytext=(-40, 8), fontsize=8)
    best = rows[-1]
    slope = best["server_rss_per_connection_kib"] / 1024
    base = best["server_rss_before_kib"] / 1024
    projection = ([best["connected"], 20_000], [base + slope * best["connected"], base + slope * 20_000])
    ax.plot(*projection, linestyle="--", color="grey", label="linear projection")
    ax.axhline(1024, color="red", linestyle=":", label="target: 1 GiB")
    ax.axvline(20_000, color="red", linestyle="-.", linewidth=1, label="target: 20,000 stations")
    ax.set_xlabel("idle stations connected")
    ax.set_ylabel("server RSS (MiB)")
    ax.set_title("RSS vs connections, one replica")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out / "connections_rss.png")


def plot_realistic(data: dict[str, Any], out: Path) -> Path:
    rows = sorted(data["rows"], key=lambda r: r["real_station_equivalents"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [r["real_station_equivalents"] for r in rows]
    ax.plot(xs, [r["p99_ms"] for r in rows], marker="o", label="p99")
    ax.plot(xs, [r["p50_ms"] for r in rows], marker=".", linestyle="--", label="p50")
    for r in rows:
        if not r["passed"]:
            ax.scatter([r["real_station_equivalents"]], [r["p99_ms"]], color="red", zorder=3, marker="x", s=60)
    ax.axhline(data.get("p99_limit_ms", 100.0), color="red", linestyle=":", label="p99 limit 100 ms")
    ax.set_yscale("log")
    ax.set_xlabel(f"fleet size (real-station equivalents = stations x speed {data['settings']['speed']:g})")
    ax.set_ylabel("round trip (ms, log scale)")
    ax.set_title("Realistic profile, one replica (x = failed step)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out / "realistic_p99.png")


def plot_scale(data: dict[str, Any], out: Path) -> Path:
    runs = data["runs"]
    labels = [f"{r['replicas']} replica{'s' if r['replicas'] > 1 else ''}" for r in runs]
    fig, (rate_ax, eff_ax) = plt.subplots(1, 2, figsize=(9, 4))
    rate_ax.bar(labels, [r["summary"]["msgs_per_s"] for r in runs], color=["#4c72b0", "#55a868"])
    rate_ax.set_ylabel("msg/s")
    rate_ax.set_title(f"Throughput (ratio {data['ratio']:.2f}x, target {data.get('target_ratio', 2.7)}x)")
    eff_ax.bar(labels, [r["msgs_per_replica_cpu_s"] for r in runs], color=["#4c72b0", "#55a868"])
    eff_ax.set_ylabel("msg per replica CPU-second")
    eff_ax.set_title(f"Efficiency (projected ratio {data['projected_ratio']:.2f}x)")
    fig.suptitle(f"Scale, stress profile, {data['machine']['cpus']} shared cores")
    return _save(fig, out / "scale.png")


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


PLOTTERS = {
    "throughput": plot_throughput,
    "connections": plot_connections,
    "realistic": plot_realistic,
    "scale": plot_scale,
}


def make_plots(results_dir: Path = RESULTS_DIR) -> list[Path]:
    """One PNG per benchmark that has results; returns the files written."""
    written = []
    for name, plot in PLOTTERS.items():
        found = latest_results(name, results_dir)
        if found is not None:
            written.append(plot(found[1], results_dir))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    for path in make_plots(args.results):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
