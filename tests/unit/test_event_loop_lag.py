"""The event-loop lag metric sees a blocked loop."""

from __future__ import annotations

import time

import trio

from csms.observability import Metrics, measure_event_loop_lag


async def test_a_blocked_loop_shows_up_as_lag() -> None:
    metrics = Metrics()

    def sample(name: str) -> float:
        return metrics.registry.get_sample_value(f"csms_event_loop_lag_seconds_{name}") or 0.0

    async with trio.open_nursery() as nursery:
        nursery.start_soon(measure_event_loop_lag, metrics.event_loop_lag, 0.05)
        with trio.fail_after(5):
            while sample("count") < 2:  # a couple of quiet samples first
                await trio.sleep(0.01)
        time.sleep(0.3)  # noqa: ASYNC251 - block the loop on purpose, as a CPU-bound or blocking call would
        with trio.fail_after(5):
            while sample("count") < 4:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert sample("sum") >= 0.2, "the 0.3 s block must be counted as lag"
    assert (metrics.registry.get_sample_value("csms_event_loop_lag_seconds_bucket", {"le": "0.1"}) or 0) >= 1


def test_process_and_gc_metrics_are_exposed() -> None:
    metrics = Metrics()
    for name in ("process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total"):
        assert metrics.registry.get_sample_value(name) is not None, name
    assert metrics.registry.get_sample_value("python_gc_collections_total", {"generation": "2"}) is not None
