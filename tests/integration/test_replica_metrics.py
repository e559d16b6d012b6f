"""A running replica exposes the per-replica sizing signals the dashboard plots: process, GC and loop lag."""

from __future__ import annotations

import re

import httpx
import trio

from tests.integration.conftest import Running


async def _metrics(csms: Running) -> str:
    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(csms.api_url + "/metrics")).text


async def test_process_gc_and_event_loop_lag_are_exposed(csms: Running) -> None:
    with trio.fail_after(10):
        while not re.search(r"^csms_event_loop_lag_seconds_count [1-9]", text := await _metrics(csms), re.M):
            await trio.sleep(0.1)
    for family in ("process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total"):
        assert re.search(rf"^{family} \d", text, re.M), family
    assert 'python_gc_collections_total{generation="2"}' in text
