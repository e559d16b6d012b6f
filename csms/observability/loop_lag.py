"""Event-loop lag: how late trio wakes a task that asked to sleep for a fixed interval.

One replica is one trio loop; when it is saturated or something blocks it, every station waits. The lag is the
most direct measure of that, cheaper and clearer than inferring it from latencies.
"""

from __future__ import annotations

from typing import Protocol

import trio


class Observes(Protocol):
    def observe(self, amount: float) -> None: ...


async def measure_event_loop_lag(histogram: Observes, interval: float = 0.5) -> None:
    """Until cancelled: sleep `interval`, record how much later than asked the loop woke us."""
    while True:
        asked = trio.current_time() + interval
        await trio.sleep_until(asked)
        histogram.observe(max(0.0, trio.current_time() - asked))
