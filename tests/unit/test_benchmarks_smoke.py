"""The benchmark simulator runs against a tiny in-process server and reports sane numbers (not a performance
test: it only has to prove the driver, its profiles and its statistics work)."""

from __future__ import annotations

import trio

from benchmarks.latency import LatencyHistogram
from benchmarks.simulator import FleetConfig, merge_results, run_fleet, split, summarize
from benchmarks.stub_server import StubServer


async def _fleet_against(stub: StubServer, **overrides: object) -> dict[str, object]:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(stub.serve)
        values: dict[str, object] = {
            "url": f"ws://127.0.0.1:{port}/ocpp",
            "stations": 20,
            "duration": 1.0,
            "warmup": 0.2,
            "connect_concurrency": 5,
            **overrides,
        }
        with trio.fail_after(15):
            result = await run_fleet(FleetConfig(**values))  # type: ignore[arg-type]
        nursery.cancel_scope.cancel()
    return result


async def test_stress_fleet_reports_rates_latency_and_answers_triggers() -> None:
    stub = StubServer("ocpp", trigger=True)
    result = await _fleet_against(stub)
    summary = summarize(result)
    assert summary["connect"]["connected"] == 20
    assert summary["errors_total"] == 0, summary["error_kinds"]
    assert summary["msgs_per_s"] > 50
    assert 0 < summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"] < 5000
    # the whole stress mix reached the server, and every station answered its TriggerMessage
    for action in ("BootNotification", "Heartbeat", "MeterValues", "StartTransaction", "StopTransaction"):
        assert stub.counters.calls.get(action, 0) > 0, (action, stub.counters.calls)
    assert stub.counters.trigger_answers == 20
    assert stub.counters.connections == 20


async def test_realistic_profile_runs_sessions_when_time_is_compressed() -> None:
    stub = StubServer("ocpp")
    result = await _fleet_against(stub, profile="realistic", speed=3000.0, stations=10)
    assert summarize(result)["errors_total"] == 0
    for action in ("StatusNotification", "Authorize", "StartTransaction", "MeterValues", "Heartbeat"):
        assert stub.counters.calls.get(action, 0) > 0, (action, stub.counters.calls)


async def test_echo_mode_and_refused_server_are_counted() -> None:
    echo = summarize(await _fleet_against(StubServer("echo"), echo=True, stations=5))
    assert echo["answered"] > 0 and echo["errors_total"] == 0
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    config = FleetConfig(url=f"ws://127.0.0.1:{dead_port}/ocpp", stations=3, duration=0.2, warmup=0.0)
    with trio.fail_after(10):
        refused = summarize(await run_fleet(config))
    assert refused["connect"]["failed"] == 3 and refused["answered"] == 0
    assert any(kind.startswith("connect:") for kind in refused["error_kinds"])


def test_histogram_percentiles_merge_and_split_cover_the_fleet() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    for ms in range(1, 101):
        (a if ms % 2 else b).record(ms / 1000)
    a.merge(LatencyHistogram.from_json(b.to_json()))
    assert a.count == 100
    assert abs(a.percentile(0.5) - 0.050) < 0.002 and abs(a.percentile(0.99) - 0.099) < 0.003
    parts = split(FleetConfig(url="ws://x", stations=10, first_index=5), 3)
    assert [p.stations for p in parts] == [4, 3, 3]
    assert [p.first_index for p in parts] == [5, 9, 12]
    fake = {
        "config": {"stations": 1, "first_index": 0, "profile": "idle"},
        "sent": 1, "answered": 1, "connects": 1, "disconnects": 0, "csms_calls": 0, "client_cpu_s": 0.1,
        "client_rss_kib": 10, "window_s": 1.0, "errors": {"x": 1}, "window_errors": {},
        "connect": {"connected": 1, "failed": 0, "unsettled": 0, "rss_kib": 1, "seconds": 0.5},
        "latency": a.to_json(), "by_action": {"Heartbeat": a.to_json()},
    }  # fmt: skip
    merged = merge_results([fake, fake])
    assert merged["answered"] == 2 and merged["errors"] == {"x": 2}
    assert LatencyHistogram.from_json(merged["latency"]).count == 200
