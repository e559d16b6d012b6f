"""A running replica exposes the per-replica sizing signals the dashboard plots: process, GC and loop lag."""

from __future__ import annotations

import re
import time

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

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


async def _phase_counts(csms: Running) -> dict[str, int]:
    found = re.findall(r'^csms_handshake_phase_seconds_count\{phase="(\w+)"\} ([0-9.e+]+)$', await _metrics(csms), re.M)
    return {phase: int(float(value)) for phase, value in found}


async def _connect(csms: Running, station_id: str, protocol: str) -> None:
    async with open_websocket_url(f"{csms.ocpp_url}/{station_id}", subprotocols=[protocol], connect_timeout=30):
        pass


async def test_handshake_phases_are_timed_and_a_same_version_reconnect_writes_no_protocol(csms: Running) -> None:
    """Each handshake phase lands in csms_handshake_phase_seconds; a reconnect in the version already recorded
    skips the protocol write (a group-commit wait while holding a handshake slot), a version change does not."""
    await csms.put_station("CP-PHASES")

    async def counted(expected: dict[str, int]) -> None:
        with trio.fail_after(10):
            while {phase: n for phase, n in (await _phase_counts(csms)).items() if phase in expected} != expected:
                await trio.sleep(0.05)

    await _connect(csms, "CP-PHASES", "ocpp1.6")
    await counted({"slot": 1, "check": 1, "claim": 1, "fence": 1, "protocol": 1, "accept": 1})
    await _connect(csms, "CP-PHASES", "ocpp1.6")
    await counted({"slot": 2, "check": 2, "claim": 2, "fence": 2, "protocol": 1, "accept": 2})
    await _connect(csms, "CP-PHASES", "ocpp2.0.1")
    await counted({"slot": 3, "protocol": 2, "accept": 3})


@pytest.mark.parametrize("replica_overrides", [{"CSMS_SLOW_STEP_SECONDS": "0.05"}])
async def test_a_step_that_blocks_the_replicas_loop_is_counted_under_its_task(csms: Running) -> None:
    """The replica runs in this test's trio loop, so this test's own blocking step is one the replica's
    detector must time and name (its task's function, never "unknown")."""
    await _metrics(csms)  # the replica is up and its detector installed
    time.sleep(0.3)  # noqa: ASYNC251 - the stall the detector exists to name
    await trio.sleep(0.1)
    found = re.findall(
        r'^csms_slow_task_step_seconds_(count|sum)\{task="([^"]+)"\} ([0-9.e+]+)$', await _metrics(csms), re.M
    )
    steps = {task: float(value) for kind, task, value in found if kind == "count"}
    seconds = {task: float(value) for kind, task, value in found if kind == "sum"}
    named = [task for task, count in steps.items() if count >= 1 and seconds[task] >= 0.3 and task != "unknown"]
    assert named, found
