"""Validations per second of a MeterValues.req with 4 sampled values: our compiled validator vs the `ocpp`
package's jsonschema-based one, in the same run (single core, no I/O).

    python benchmarks/bench_validation.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from csms.ocpp import Validator, parse_frame
from csms.ocpp.frames import Call as FrameCall
from csms.ocpp.frames import encode

PAYLOAD: dict[str, Any] = {
    "connectorId": 1,
    "transactionId": 1234,
    "meterValue": [
        {
            "timestamp": "2024-05-01T10:00:00.000Z",
            "sampledValue": [
                {
                    "value": "12345.6",
                    "context": "Sample.Periodic",
                    "measurand": "Energy.Active.Import.Register",
                    "unit": "Wh",
                    "location": "Outlet",
                },
                {
                    "value": "7200",
                    "context": "Sample.Periodic",
                    "measurand": "Power.Active.Import",
                    "unit": "W",
                },
                {
                    "value": "32.1",
                    "context": "Sample.Periodic",
                    "measurand": "Current.Import",
                    "unit": "A",
                    "phase": "L1",
                },
                {
                    "value": "230.4",
                    "context": "Sample.Periodic",
                    "measurand": "Voltage",
                    "unit": "V",
                    "phase": "L1-N",
                },
            ],
        }
    ],
}


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` of wall time (after a short warm-up)."""
    for _ in range(100):
        fn()
    n, batch = 0, 200
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(batch):
            fn()
        n += batch
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()

    t0 = time.perf_counter()
    validator = Validator.for_version("1.6")
    compile_ms = (time.perf_counter() - t0) * 1000

    ours = rate(lambda: validator.validate_request("MeterValues", PAYLOAD), args.seconds)
    text = encode(FrameCall("1-abcd", "MeterValues", PAYLOAD))
    frame = parse_frame(text, "1.6")
    assert isinstance(frame, FrameCall)

    def parse_and_validate() -> None:
        call = parse_frame(text, "1.6")
        assert isinstance(call, FrameCall)
        validator.validate_request(call.action, call.payload)

    ours_with_parse = rate(parse_and_validate, args.seconds)

    from ocpp.messages import Call, _validate_payload  # the package's validator (jsonschema Draft4)

    theirs = rate(lambda: _validate_payload(Call("1-abcd", "MeterValues", PAYLOAD), "1.6"), args.seconds)

    print(f"compile all 1.6 schemas (fastjsonschema): {compile_ms:.0f} ms")
    for name, per_second in [
        ("csms.ocpp Validator (fastjsonschema)", ours),
        ("csms.ocpp parse_frame + validate", ours_with_parse),
        ("ocpp.messages._validate_payload (jsonschema)", theirs),
    ]:
        print(f"{name:<46} {per_second:>10,.0f} /s  ({1e6 / per_second:.1f} us each)")
    print(f"speed-up: {ours / theirs:.1f}x")


if __name__ == "__main__":
    main()
