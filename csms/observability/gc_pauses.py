"""Garbage-collector pauses: how long each collection held the whole replica (all its stations) still.

prometheus-client's python_gc_* count collections but not their duration; a full collection over tens of
thousands of connections' objects is a whole-process stall, so its length is what an operator needs to see.
"""

from __future__ import annotations

import gc
import time
from typing import Any, Protocol

import trio


class ObservesByGeneration(Protocol):
    def observe(self, generation: int, seconds: float) -> None: ...


async def observe_gc_pauses(observer: ObservesByGeneration) -> None:
    """Until cancelled: report every collection's duration and generation (a gc callback, removed on exit)."""
    started = 0.0

    def callback(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
        else:
            observer.observe(info["generation"], time.perf_counter() - started)

    gc.callbacks.append(callback)
    try:
        await trio.sleep_forever()
    finally:
        gc.callbacks.remove(callback)
