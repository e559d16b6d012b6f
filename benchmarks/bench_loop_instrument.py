"""CPU the slow-step detector adds to a busy trio loop: none, the per-step instrument it replaced, and the
batch-timing one with its sampler thread (csms/observability/slow_steps.py).

    python benchmarks/bench_loop_instrument.py [--tasks 1000 --steps 200 --rounds 7]

The workload is scheduler-bound on purpose (tasks that only yield), so the per-step cost shows in full; a
replica's steps do more, so its share there is smaller (~3.5 % of its Python CPU for the per-step instrument
under the stress mix, py-spy --gil). Rounds alternate between the variants, the median round is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio

from benchmarks.harness import machine, write_results
from csms.observability import SlowSteps


class PerStep(trio.abc.Instrument):
    """The previous design: both step hooks on every task step (what trio's dispatch makes costly)."""

    def __init__(self, threshold: float, observer: Any) -> None:
        self._threshold, self._observer, self._started = threshold, observer, 0.0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._started = time.perf_counter()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        took = time.perf_counter() - self._started
        if took >= self._threshold:
            self._observer.observe(task.name, took)


class Discard:
    def observe(self, task_name: str, seconds: float) -> None:
        pass


def one_round(variant: str, tasks: int, steps: int) -> float:
    """CPU seconds per million task steps of ``tasks`` tasks that each yield ``steps`` times."""

    async def worker() -> None:
        for _ in range(steps):
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def main() -> None:
        if variant == "per-step":
            trio.lowlevel.add_instrument(PerStep(0.1, Discard()))
        elif variant == "batch + sampler":
            trio.lowlevel.add_instrument(SlowSteps(0.1, Discard()))
        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(worker)

    started = time.process_time()
    trio.run(main)
    return (time.process_time() - started) / (tasks * steps) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    variants = ("none", "per-step", "batch + sampler")
    seconds: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for variant in variants:
            seconds[variant].append(one_round(variant, args.tasks, args.steps))
    median = {v: statistics.median(s) for v, s in seconds.items()}
    rows = [
        f"| {v} | {median[v]:.2f} | {min(s):.2f}-{max(s):.2f} | {median[v] - median['none']:+.2f} |"
        for v, s in seconds.items()
    ]
    markdown = "\n".join(
        [
            "# Slow-step detector: CPU per task step",
            "",
            f"{args.tasks} tasks x {args.steps} yields, {args.rounds} alternating rounds; CPU seconds per million "
            "steps (= microseconds per step), median and range. Shared 2-core machine: compare the rows, not runs.",
            "",
            "| variant | us per step | range | added |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    print(markdown)
    write_results(
        "loop-instrument", {"machine": machine(), "args": vars(args), "us_per_step": seconds}, markdown + "\n"
    )


if __name__ == "__main__":
    main()
