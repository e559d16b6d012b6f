"""The benchmark simulator runs against a tiny in-process server and reports sane numbers (not a performance
test: it only has to prove the driver, its profiles and its statistics work)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
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
    # Counts and the statistics' own consistency, never a wall-clock rate: that is the benchmarks' job.
    assert summary["answered"] > 0 and summary["msgs_per_s"] > 0
    assert 0 < summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"]
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


async def test_realistic_compressed_fleet_spreads_round_robin_without_errors() -> None:
    """The driver bench_realistic uses; whether N stations at speed S really send what N x S real stations send
    is a wall-clock rate, so bench_realistic reports it (rate_vs_model) instead of this tier asserting it."""
    stubs = [StubServer("ocpp"), StubServer("ocpp")]
    async with trio.open_nursery() as nursery:
        ports = [await nursery.start(stub.serve) for stub in stubs]
        speed, stations = 900.0, 30
        config = FleetConfig(
            url="ws://unused.invalid/ocpp",
            urls=tuple(f"ws://127.0.0.1:{port}/ocpp" for port in ports),
            stations=stations,
            profile="realistic",
            speed=speed,
            warmup=1800 / speed,  # one compressed transaction period: steady state
            duration=2.0,
            rebase_at_go=True,
        )
        with trio.fail_after(15):
            summary = summarize(await run_fleet(config))
        nursery.cancel_scope.cancel()
    assert [stub.counters.connections for stub in stubs] == [15, 15]
    assert summary["errors_total"] == 0, summary["error_kinds"]
    assert summary["answered"] > 0


def _write(path: Path, data: dict[str, object]) -> None:
    path.write_text(json.dumps(data))


def test_report_compares_with_targets_and_plots_render(tmp_path: Path) -> None:
    from benchmarks import report

    hist = LatencyHistogram()
    for ms in (2, 3, 5, 8, 40):
        hist.record(ms / 1000)
    machine = {"cpus": 2, "cpu_model": "Test CPU", "kernel": "6", "python": "3.11"}
    run = {"summary": {"msgs_per_s": 6000.0, "p99_ms": 40.0}, "result": {"latency": hist.to_json()}}
    _write(tmp_path / "throughput-20260101-000000.json", {
        "machine": machine, "settings": {"stations": 100, "duration": 15},
        "runs": [{**run, "label": "echo (transport ceiling)", "summary": {"msgs_per_s": 12000.0, "p99_ms": 9.0}},
                 {**run, "label": "csms group commit on"}],
    })  # fmt: skip
    _write(tmp_path / "throughput-20250101-000000.json", {"runs": []})  # older: ignored
    _write(tmp_path / "connections-20260101-000000.json", {
        "machine": machine, "settings": {"hold": 10}, "fd_limit": 20000,
        "rows": [{"connected": 10000, "server_rss_before_kib": 50000, "server_rss_connected_kib": 470000,
                  "server_rss_per_connection_kib": 42.0}],
    })  # fmt: skip
    _write(tmp_path / "realistic-20260101-000000.json", {
        "machine": machine, "settings": {"speed": 90, "duration": 20}, "p99_limit_ms": 100.0,
        "largest_passing": {"stations": 600, "speed": 90, "real_station_equivalents": 54000, "msgs_per_s": 1770,
                            "p99_ms": 60.0},
        "rows": [{"stations": s, "real_station_equivalents": s * 90, "p50_ms": 9.0, "p99_ms": p99, "passed": p99 < 100}
                 for s, p99 in ((300, 30.0), (600, 60.0), (1200, 300.0))],
    })  # fmt: skip
    _write(tmp_path / "scale-20260101-000000.json", {
        "machine": machine, "settings": {"duration": 3}, "ratio": 1.2, "projected_ratio": 2.8, "target_ratio": 2.7,
        "runs": [{"replicas": n, "summary": {"msgs_per_s": rate}, "msgs_per_replica_cpu_s": eff}
                 for n, rate, eff in ((1, 2000.0, 3000.0), (3, 2400.0, 2800.0))],
    })  # fmt: skip
    _write(tmp_path / "failover-20260101-000000.json", {"lease_ttl": 10.0, "runs": [
        {"stations": n, "failover": {"all_owned_s": owned, "all_serving_s": 3.0},
         "drain": {"all_owned_s": 26.0, "all_serving_s": 26.0, "exit_s": 27.0, "exit_code": code,
                   "paced_minimum_s": 25.0}}
        for n, owned, code in ((1000, 20.0, 0), (5000, 9.5, 1))]})  # fmt: skip
    text = report.summary(tmp_path)
    lines = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert "6,000 msg/s, p99 40.0 ms, 0.50x the echo ceiling" in lines["sustained msg/s per replica, durable writes"]
    assert "| met |" in lines["sustained msg/s per replica, durable writes"]
    assert "partial: projection within 1 GiB" in lines["idle connected stations per replica"]
    scale = lines["3 replicas vs 1"]
    assert "partial" in scale and "smoke-size run" in scale
    assert "| met |" in lines["replica SIGKILL, 5,000 stations owned"]  # the 5,000 run, not the 1,000 one
    assert "not met" in lines["replica drain (SIGTERM)"]  # exit code 1
    assert "54,000 real-station equivalents" in text and "2-core machine (Test CPU" in text

    pytest.importorskip("matplotlib")
    from benchmarks.plots import make_plots

    written = make_plots(tmp_path)
    assert sorted(p.name for p in written) == [
        "connections_rss.png", "realistic_p99.png", "scale.png", "throughput_latency.png"
    ]  # fmt: skip
    assert all(p.stat().st_size > 5000 for p in written)
    assert "![scale](scale.png)" in report.summary(tmp_path)


@pytest.mark.parametrize("profile", ["stress", "realistic"])
def test_the_201_profiles_send_only_schema_valid_201_calls(profile: str) -> None:
    """Every call the 2.0.1 simulator builds passes the 2.0.1 schemas, and a session's events count up."""
    import random

    from benchmarks import profiles201
    from benchmarks.profiles import Profile, StationState
    from csms.ocpp import Validator

    validator = Validator.for_version("2.0.1")
    rng = random.Random(3)
    state = StationState("sim-201", 2, rng)
    schedule = Profile(profile, speed=100.0)
    schedule.on_boot(state, 0.0, rng)
    sent: list[tuple[str, str, int]] = []
    now = 0.0
    for _ in range(200):
        now, step = schedule.next_step(state, now, rng)
        payload = profiles201.build_payload(state, step, "TAG")
        if payload is None:
            continue
        action = profiles201.action_of(step, payload)
        validator.validate_request(action, payload)
        if action == "TransactionEvent":
            sent.append((payload["transactionInfo"]["transactionId"], payload["eventType"], payload["seqNo"]))
    assert {kind for _, kind, _ in sent} == {"Started", "Updated", "Ended"}
    for tx in {tx for tx, _, _ in sent}:
        seq_nos = [seq for t, _, seq in sent if t == tx]
        assert seq_nos == list(range(len(seq_nos)))
    assert profiles201.answer_csms_call(state, "TriggerMessage", {"requestedMessage": "Heartbeat"}) == {
        "status": "Accepted"
    }


async def test_open_loop_fleet_with_many_tags_reports_its_own_loop_lag() -> None:
    stub = StubServer("ocpp")
    result = await _fleet_against(stub, profile="realistic", speed=3000.0, stations=10, id_tags=50, open_loop=True)
    summary = summarize(result)
    assert summary["errors_total"] == 0 and summary["answered"] > 0
    assert 0 <= summary["generator_loop_lag"]["p99_ms"] <= summary["generator_loop_lag"]["max_ms"]
    assert summarize(merge_results([result, result]))["generator_loop_lag"] == summary["generator_loop_lag"]


def test_a_session_keeps_the_tag_drawn_at_authorize() -> None:
    import random

    from benchmarks.profiles import StationState, session_tag

    rng = random.Random(3)
    state = StationState("s", 2, rng)
    assert session_tag(state, ("Authorize", 1, ""), "TAG", 1, rng) == "TAG"
    drawn = {session_tag(state, ("Authorize", 1, ""), "TAG", 1000, rng) for _ in range(20)}
    assert len(drawn) > 1 and all(tag.startswith("TAG-") for tag in drawn)
    tag = session_tag(state, ("Authorize", 2, ""), "TAG", 1000, rng)
    assert session_tag(state, ("StartTransaction", 2, ""), "TAG", 1000, rng) == tag
    assert session_tag(state, ("StopTransaction", 2, ""), "TAG", 1000, rng) == tag


def test_idle_cost_median_leaves_out_runs_whose_fleet_was_still_connecting() -> None:
    from benchmarks.bench_connections import median_of_runs

    def run(per_10k: float, valid: bool) -> dict[str, object]:
        return {
            "idle_cpu_pct_per_10k": per_10k,
            "server_rss_per_connection_kib": 30.0,
            "connect_rate_per_s": 50.0,
            "loop_lag_in_hold": {"max_below_s": 0.1},
            "idle_reading_valid": valid,
        }

    median = median_of_runs([run(39.2, False), run(15.0, True), run(17.0, True), run(16.0, True)])
    assert median["idle_cpu_pct_per_10k"] == 16.0
    assert median["runs_idle_cpu_pct_per_10k"] == [15.0, 17.0, 16.0] and median["runs_invalid"] == 1


def test_a_steady_start_stops_sessions_at_the_steady_rate_from_the_first_window() -> None:
    """--steady-start must look like a fleet that has been running: in the window right after the ramp, as
    many sessions end as begin (both at charging connectors / mean session length), not none."""
    import random

    from benchmarks.profiles import TX_PERIOD_S, Profile, StationState

    rng = random.Random(5)
    schedule = Profile("realistic", speed=1.0, ramp_s=180.0)
    counts = {"StartTransaction": 0, "StopTransaction": 0}
    stations = 2000
    for i in range(stations):
        state = StationState(f"s{i}", 2, rng)
        schedule.on_boot(state, 0.0, rng)
        now = 0.0
        while now < 360.0:
            now, (action, _, _) = schedule.next_step(state, now, rng)
            if 180.0 <= now < 360.0 and action in counts:
                counts[action] += 1
    steady = stations * 2 / TX_PERIOD_S * 180.0  # sessions a steady fleet begins (and ends) in 180 s: 400
    for action, seen in counts.items():
        assert 0.75 * steady < seen < 1.25 * steady, (action, counts)


def test_the_failover_cpu_floor_splits_the_csms_from_the_harness() -> None:
    """CPU per moved station and the floor under "all serving": everything used over the move, on all cores."""
    import os

    from benchmarks.bench_failover import Bench

    before = {"generator": 10.0, "b": 1.0, "c": 1.0, "balancer": 2.0, "postgres": 3.0, "etcd": 0.5}
    after = {"generator": 16.0, "b": 4.0, "c": 4.0, "balancer": 4.0, "postgres": 5.0, "etcd": 1.5}
    budget = Bench._cpu_budget(before, after, wall=10.0, moved=1000)
    assert budget["cpu_ms_per_station"] == {"csms": 9.0, "harness": 8.0}  # (3+3+2+1) s, (6+2) s over 1000
    cores = os.cpu_count() or 1
    assert budget["cpu_floor_s"] == round(17.0 / cores, 1)
    assert budget["csms_cpu_floor_s"] == round(9.0 / cores, 1)
    assert budget["cpu_share"]["generator"] == 0.6


def test_the_failover_per_station_figures_count_each_station_once_from_its_successful_attempt() -> None:
    from types import SimpleNamespace

    from benchmarks.bench_failover import Bench

    bench = Bench.__new__(Bench)
    stats = SimpleNamespace(
        served_at={"s1": 12.0, "s2": 15.0, "old": 4.0, "again": 11.0},
        dialed_at={"s1": 10.0, "s2": 11.0, "old": 3.0, "again": 13.0},  # "again" dialled anew after being served
        queued_at={"s1": 6.0, "s2": 6.0, "old": 2.0, "again": 12.5},
    )
    bench.fleet = SimpleNamespace(stats=stats)  # type: ignore[assignment]
    figures = bench._per_station(started=5.0)
    assert figures["dialed_to_served_s"] == {"p50": 4.0, "p99": 4.0, "max": 4.0}
    assert figures["attempt_to_served_s"]["max"] == 9.0
    assert figures["dialed_to_served_max_s"] == 4.0


def test_the_failover_report_tables_have_as_many_cells_as_headers() -> None:
    from benchmarks.bench_failover import _markdown, summarize_runs

    event = {
        "all_owned_s": 40.0,
        "all_connected_s": 41.0,
        "all_serving_s": 42.0,
        "serving_after_first_claim_s": 39.0,
        "first_claim_s": 3.0,
        "claims_per_s": 125.0,
        "dialed_to_served_s": {"p50": 5.0, "p99": 7.0, "max": 7.5},
        "attempt_to_served_s": {"p50": 20.0, "p99": 38.0, "max": 39.0},
        "dialed_to_served_max_s": 7.5,
        "cpu_ms_per_station": {"csms": 8.0, "harness": 8.0},
        "machine_busy": 0.86,
        "cpu_floor_s": 40.0,
        "csms_cpu_floor_s": 20.0,
        "stations_on_killed_replica": 5000,
    }
    runs = [{"stations": 5000, "run": 1, "failover": event}]
    report = {
        "date": "now",
        "machine": "test",
        "lease_ttl": 10.0,
        "drain_rate": 200.0,
        "backoff": 0.5,
        "summary": summarize_runs(runs),
        "runs": runs,
    }
    table: list[int] = []
    for line in [*_markdown(report).splitlines(), ""]:
        if line.startswith("|"):
            table.append(line.count("|"))
        elif table:
            assert len(set(table)) == 1, f"a table's rows differ in cells: {table}"
            assert len(table) == 3  # header, rule, one row
            table = []


def test_the_machine_meter_splits_busy_from_steal_and_the_report_shows_both() -> None:
    """Runs hours apart on a shared VM differ by the machine: results carry busy, steal and a calibration."""
    from benchmarks import bench_realistic, harness

    meter = harness.MachineMeter()
    meter.start()
    spin_until = time.perf_counter() + 0.3
    while time.perf_counter() < spin_until:  # one core busy for a while: the machine cannot read idle
        pass
    state = meter.stop()
    assert 0 < state["busy_pct"] <= 100 and 0 <= state["steal_pct"] <= 100
    assert harness.calibration_ms(rounds=1) > 0
    assert bench_realistic._machine({**state, "calibration_ms": 16.6}).endswith("/ 16.6")
    assert bench_realistic._machine(None) == ""  # results from before the column


def test_the_message_cpu_benchmark_runs_the_real_steps_on_a_valid_message() -> None:
    from benchmarks.bench_message_cpu import measure

    steps = measure(0.01)  # validation raising would fail here: the message must be one a station may send
    assert set(steps) >= {"schema validation", "storage domain check", "samples, statements and event", "total"}
    assert all(v > 0 for v in steps.values())
    assert steps["total"] == pytest.approx(sum(v for k, v in steps.items() if k != "total"))


def test_the_failover_server_means_add_up_replicas_per_action_and_direction() -> None:
    from benchmarks.bench_failover import metric_means

    b = "\n".join(
        [
            'csms_ocpp_message_duration_seconds_sum{action="MeterValues",direction="in"} 3.0',
            'csms_ocpp_message_duration_seconds_count{action="MeterValues",direction="in"} 10.0',
            'csms_ocpp_message_duration_seconds_bucket{action="MeterValues",direction="in",le="0.1"} 4.0',
            'csms_ocpp_message_duration_seconds_sum{action="TriggerMessage",direction="out"} 2.0',
            'csms_ocpp_message_duration_seconds_count{action="TriggerMessage",direction="out"} 1.0',
            "csms_db_commit_duration_seconds_sum 1.0",
            "csms_db_commit_duration_seconds_count 4.0",
            "csms_db_query_duration_seconds_count 0.0",
        ]
    )
    c = 'csms_ocpp_message_duration_seconds_sum{action="MeterValues",direction="in"} 1.0\n'
    c += 'csms_ocpp_message_duration_seconds_count{action="MeterValues",direction="in"} 10.0'
    assert metric_means([b, c]) == {
        "db_commit_duration": 0.25,
        "ocpp_message_duration:MeterValues": 0.2,
        "ocpp_message_duration:TriggerMessage:out": 2.0,
    }


def test_the_loop_instrument_benchmark_times_each_variant() -> None:
    from benchmarks.bench_loop_instrument import one_round

    for variant in ("none", "per-step", "batch + sampler"):
        assert one_round(variant, tasks=10, steps=10) > 0
