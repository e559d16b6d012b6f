"""A /metrics scrape renders off the event loop: the stations' tasks keep running while it renders."""

from __future__ import annotations

import time
from collections.abc import Iterator

import trio
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import Metric

from csms.api.health_routes import render_metrics


class _SlowCollector:
    """Stands in for a registry that takes long to render (tens of thousands of stations' series)."""

    def collect(self) -> Iterator[Metric]:
        time.sleep(0.3)
        return iter(())


async def test_a_slow_render_leaves_the_event_loop_free() -> None:
    registry = CollectorRegistry()
    Counter("csms_example_total", "an example", registry=registry).inc()
    registry.register(_SlowCollector())  # type: ignore[arg-type]
    ticks = 0

    async def station_work() -> None:
        nonlocal ticks
        while True:
            await trio.sleep(0.01)
            ticks += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(station_work)
        text = await render_metrics(registry)
        nursery.cancel_scope.cancel()
    assert b"csms_example_total 1.0" in text
    assert ticks >= 10  # on the loop, the 0.3 s render would have allowed none
