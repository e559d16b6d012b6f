"""CPU per station message on the replica's synchronous path (no I/O): a realistic 1.6 MeterValues.req with 12
sampled values from frame text to the rows the writer sends, step by step; optionally side by side with
another checkout of the code in the same run.

    python benchmarks/bench_message_cpu.py [--rounds 5] [--baseline /path/to/other/checkout]

Why: at 19,000 realistic stations the replica spends ~1 ms of CPU per message and MeterValues are 63 % of them;
end-to-end runs on the shared 2-core machine drift more than a few percent, this does not. Each tree runs in
its own subprocess, rounds alternate between the trees, and the median round is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

SAMPLES = 12  # the middle of the 8-15 a real station sends


def _payload() -> dict[str, Any]:
    # What the simulated stations send (the baseline tree's own copy when measuring a baseline).
    from benchmarks.profiles import MEASURANDS, _sample

    return {
        "connectorId": 1,
        "transactionId": 4242,
        "meterValue": [
            {
                "timestamp": "2026-12-02T09:00:00.123Z",
                "sampledValue": [_sample(measurand, 123456) for measurand in MEASURANDS[:SAMPLES]],
            }
        ],
    }


def measure(seconds: float) -> dict[str, float]:
    """Microseconds per message for each step, in this process (imports the code on sys.path)."""
    from datetime import UTC, datetime

    import orjson

    from csms.central_system.storage_limits import domain_check
    from csms.central_system.v16 import _samples
    from csms.ocpp import Validator, parse_frame
    from csms.outbox.writing import event_statement
    from csms.transactions import outbox_events
    from csms.transactions.samples import sample_statements, samples_event

    payload = _payload()
    text = orjson.dumps([2, "m-1", "MeterValues", payload]).decode()
    validator, check = Validator.for_version("1.6"), domain_check("1.6")
    received = datetime.now(UTC)

    def build() -> list[Any]:
        """What the MeterValues handler and the ledger do before the write is queued."""
        found = _samples(payload["meterValue"])
        statements = sample_statements("st-1", 1, 4242, received, "MeterValues", found)
        statements.append(event_statement(samples_event("st-1", 1, 4242, found)))
        outbox_events.register_wh(found)
        return statements

    statements = build()

    steps: dict[str, Callable[[], object]] = {
        "parse frame": lambda: parse_frame(text, "1.6"),
        "schema validation": lambda: validator.validate_request("MeterValues", payload),
        "storage domain check": lambda: check.check_request("MeterValues", payload),
        "samples, statements and event": build,
        "rows as JSON (writer)": lambda: orjson.dumps([s.args for s in statements]),
    }
    result = {name: _per_call_us(fn, seconds) for name, fn in steps.items()}
    result["total"] = sum(result.values())
    return result


def _per_call_us(fn: Callable[[], object], seconds: float) -> float:
    calls, started = 0, time.process_time()
    while (elapsed := time.process_time() - started) < seconds:
        for _ in range(200):
            fn()
        calls += 200
    return elapsed / calls * 1e6


def _run_tree(tree: Path, seconds: float) -> dict[str, float]:
    """``measure`` from this file, run against the ``csms`` package of ``tree``."""
    code = f"import json, runpy; print(json.dumps(runpy.run_path({str(Path(__file__))!r})['measure']({seconds})))"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tree, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def main() -> None:
    # Imported here: measure() also runs in another tree's process, whose csms must come first on sys.path.
    sys.path.insert(0, str(REPO_ROOT))
    from benchmarks import harness

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per tree (alternating); the median is shown")
    parser.add_argument("--seconds", type=float, default=0.5, help="CPU time per step and round")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure side by side")
    args = parser.parse_args()
    trees = {"this checkout": REPO_ROOT}
    if args.baseline is not None:
        trees["baseline"] = args.baseline.resolve()
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            rounds[name].append(_run_tree(tree, args.seconds))
    names = list(rounds)
    medians = {n: {step: statistics.median(r[step] for r in rounds[n]) for step in rounds[n][0]} for n in names}
    lines = [f"CPU per MeterValues.req with {SAMPLES} sampled values, median of {args.rounds} rounds (us)", ""]
    lines += ["| step | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [
        f"| {step} | " + " | ".join(f"{medians[n][step]:.1f}" for n in names) + " |" for step in medians[names[0]]
    ]
    lines += ["", f"Trees: {', '.join(f'{n} = {t}' for n, t in trees.items())}.", "", _CAVEAT]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    data = {"benchmark": "message-cpu", "machine": harness.machine(), "samples": SAMPLES, "rounds": rounds}
    data["trees"] = {n: str(t) for n, t in trees.items()}
    json_path, md_path = harness.write_results("message-cpu", {**data, "median_us": medians}, markdown)
    print(f"wrote {json_path} and {md_path}")


_CAVEAT = "One process per tree on the shared 2-core machine; rounds alternate between the trees so drift hits both."

if __name__ == "__main__":
    main()
