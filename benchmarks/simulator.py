"""A lightweight OCPP 1.6J / 2.0.1 fleet driver on trio: N stations, one WebSocket each, against one URL.

    python -m benchmarks.simulator ws://127.0.0.1:9000/ocpp --stations 1000 --profile stress --duration 30
    python -m benchmarks.simulator URL --stations 1000 --profile realistic --ocpp ocpp2.0.1
    python -m benchmarks.simulator URL --stations 20000 --profile idle --processes 2 --duration 60

Each station is one task (plus trio-websocket's reader) holding a `StationState`; it connects through a shared
limiter (a reconnect storm never opens thousands of handshakes at once), boots, then follows its profile,
answering CSMS-initiated calls (TriggerMessage and friends) with Accepted. A dropped connection is retried
with jittered exponential backoff, and the call that was in flight is re-sent (same payload,
new message id), like real firmware. Round-trip latency is recorded only inside the measurement window, in
a log histogram, so results from several processes (`--processes`) merge exactly.

Phases: connect (every station connects and boots once) -> `on_connected` (a barrier: worker processes report
and wait for "go") -> warm-up (running, not recorded) -> measurement window -> stop.

`echo=True` accepts an echoed request frame as its own answer, so the same driver measures a raw WebSocket
echo server (the transport ceiling).
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import math
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError, connect_websocket_url

from benchmarks import profiles201
from benchmarks.latency import LatencyHistogram
from benchmarks.profiles import (
    Payload,
    Profile,
    StationState,
    Step,
    absorb_answer,
    answer_csms_call,
    build_payload,
    session_tag,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ("ocpp1.6", "ocpp2.0.1")


@dataclass(frozen=True)
class FleetConfig:
    url: str  # base, e.g. ws://127.0.0.1:9000/ocpp; the station id is appended as a path segment
    stations: int
    profile: str = "stress"
    duration: float = 10.0  # measurement window (s)
    warmup: float = 2.0  # running but not recorded (s)
    first_index: int = 0  # station ids are f"{prefix}{index:06d}" for index in [first_index, +stations)
    prefix: str = "sim-"
    connectors: int = 2
    speed: float = 1.0  # realistic/idle: simulated-time compression
    heartbeat_s: float = 300.0
    id_tag: str = "BENCHTAG"
    password: str = ""  # HTTP Basic (security profile 1) when set
    connect_concurrency: int = 200  # handshakes in flight at once
    connect_timeout: float = 30.0
    call_timeout: float = 30.0
    settle_timeout: float = 300.0  # longest the connect phase may take before measuring anyway
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    echo: bool = False
    seed: int = 1
    rebase_at_go: bool = False  # shift each station's timed schedule to start at "go", not at its boot:
    # otherwise every event that fell due during a long connect phase fires at once when the window opens
    station_ping_s: float = 0.0  # > 0: the station pings the CSMS this often and reconnects on a late pong,
    # as firmware does (WebSocketPingInterval): how a host that vanished without FIN is noticed from this side
    ramp_s: float = 0.0  # realistic: start in the steady state over this many simulated seconds (Profile)
    urls: tuple[str, ...] = ()  # when set, station `index` connects to urls[index % len(urls)] instead of `url`
    protocol: str = "ocpp1.6"  # or "ocpp2.0.1": the subprotocol offered and the payloads sent (profiles201)
    id_tags: int = 1  # > 1: each session presents one of this many tags, f"{id_tag}-{k:05d}" (cache misses)
    open_loop: bool = False  # realistic/idle: latency counts from when a call was due, not from when it was sent,
    # so time the generator or the station's previous slow call held it back is counted (no coordinated omission)
    resend_on_reconnect: int = 0  # MeterValues a reconnecting station queued while offline and sends after its
    # statuses, as firmware flushes its offline queue (1.6 only): a takeover then also carries their writes


class _Stats:
    """Counters of one fleet; `window` parts only count while recording."""

    def __init__(self) -> None:
        self.recording = False
        self.latency = LatencyHistogram()
        self.loop_lag = LatencyHistogram()  # the generator's own event-loop lag: is a stall ours or the server's?
        self.by_action: dict[str, LatencyHistogram] = {}
        self.window_errors: dict[str, int] = {}
        self.sent = 0
        self.errors: dict[str, int] = {}  # lifetime
        self.connects = 0
        self.disconnects = 0
        self.closes: list[tuple[str, float, bool]] = []  # (station id, trio time, had a transaction open)
        self.csms_calls = 0
        # Per station, the trio time of its latest connect and latest reconnect served again: counts of distinct
        # stations since an event (a station that reconnects twice, e.g. rebalanced meanwhile, counts once).
        self.connected_at: dict[str, float] = {}
        self.served_at: dict[str, float] = {}
        # Per station, when its latest connect attempt began: after its back-off ("queued"), and after the
        # generator's own connect limiter let it dial ("dialed"); served - dialed is what the CSMS (and the
        # balancer) took for that station, dialed - queued is the generator's queue, which real stations lack.
        self.queued_at: dict[str, float] = {}
        self.dialed_at: dict[str, float] = {}

    def stations_since(self, times: dict[str, float], since: float) -> int:
        """Distinct stations whose time in ``times`` (connected_at or served_at) is at or after ``since``."""
        return sum(1 for at in times.values() if at >= since)

    def answered(self, action: str, seconds: float) -> None:
        if self.recording:
            self.latency.record(seconds)
            hist = self.by_action.get(action)
            if hist is None:
                hist = self.by_action[action] = LatencyHistogram()
            hist.record(seconds)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if self.recording:
            self.window_errors[kind] = self.window_errors.get(kind, 0) + 1


class _Closed(Exception):
    """The connection ended (closed, reset or timed out); the station reconnects."""


_EXPECTED = (_Closed, ConnectionRejected, HandshakeError, OSError, trio.TooSlowError)


def _sole(raised: BaseException) -> BaseException | None:
    """The expected connection failure inside `raised` (nurseries wrap it in a group; a loaded machine can
    close a connection from both ends at once, so a group may hold several), else None."""
    if isinstance(raised, BaseExceptionGroup):
        # A connect deadline also cancels trio-websocket's reader task, whose Cancelled rides along in the
        # group; the station's own cancellation (the fleet stopping) is re-raised at its next checkpoint.
        expected, unexpected = raised.split(_EXPECTED)
        if expected is None or (unexpected is not None and unexpected.split(trio.Cancelled)[1] is not None):
            return None
        first: BaseException = expected
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        return first
    return raised if isinstance(raised, _EXPECTED) else None


class _Session:
    """One live connection of one station: send calls, wait, answer the CSMS."""

    __slots__ = ("fleet", "next_id", "state", "ws")

    def __init__(self, fleet: Fleet, state: StationState, ws: Any) -> None:
        self.fleet = fleet
        self.state = state
        self.ws = ws
        self.next_id = 0

    async def _receive(self) -> list[Any]:
        try:
            raw = await self.ws.get_message()
        except ConnectionClosed as exc:
            raise _Closed(f"disconnected:{exc.reason.code if exc.reason else '?'}") from None
        try:
            frame = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.fleet.stats.error("bad_frame")
            return []
        return frame if isinstance(frame, list) else []

    async def _send(self, frame: list[Any]) -> None:
        try:
            await self.ws.send_message(orjson.dumps(frame).decode())
        except ConnectionClosed:
            raise _Closed("disconnected:on_send") from None

    async def _handle_unsolicited(self, frame: list[Any]) -> None:
        if len(frame) == 4 and frame[0] == 2 and isinstance(frame[2], str):
            self.fleet.stats.csms_calls += 1
            payload = frame[3] if isinstance(frame[3], dict) else {}
            answer = self.fleet.answer_csms_call(self.state, frame[2], payload)
            await self._send([3, frame[1], answer])
        elif frame:
            self.fleet.stats.error("late_answer")  # an answer to a call we gave up on

    async def _receive_until(self, deadline: float, waiting: set[trio.CancelScope] | None) -> list[Any] | None:
        """The next frame, or None at `deadline` or when the fleet cancels a scope in `waiting`. Only the
        receive is cancellable: an answer being sent is never cut in half."""
        with trio.CancelScope(deadline=deadline) as scope:
            if waiting is not None:
                waiting.add(scope)
            try:
                return await self._receive()
            finally:
                if waiting is not None:
                    waiting.discard(scope)
        return None

    async def idle_until(self, deadline: float, release: trio.Event | None = None) -> None:
        """Wait until `deadline` (trio clock) or `release`, answering whatever the CSMS sends meanwhile."""
        waiting = self.fleet.waiting if release is not None else None
        while release is None or not release.is_set():
            frame = await self._receive_until(deadline, waiting)
            if frame is None:
                return
            await self._handle_unsolicited(frame)

    async def call(self, step: Step, payload: Payload, due: float | None = None) -> Payload | None:
        """Send one call and wait for its answer; None on CallError or timeout (both counted). With `due` (trio
        clock), the latency counts from then: open-loop measurement."""
        fleet = self.fleet
        action = profiles201.action_of(step, payload) if fleet.v201 else step[0]
        self.next_id += 1
        message_id = str(self.next_id)
        fleet.stats.sent += 1
        started = time.perf_counter()
        if due is not None:
            started -= max(0.0, trio.current_time() - due)
        await self._send([2, message_id, action, payload])
        deadline = trio.current_time() + fleet.config.call_timeout
        while (frame := await self._receive_until(deadline, None)) is not None:
            if len(frame) >= 3 and frame[1] == message_id:
                kind = frame[0]
                if kind == 3:
                    fleet.stats.answered(action, time.perf_counter() - started)
                    return frame[2] if isinstance(frame[2], dict) else {}
                if kind == 4:
                    fleet.stats.answered(action, time.perf_counter() - started)
                    fleet.stats.error(f"CallError:{action}:{frame[2]}")
                    return None
                if kind == 2 and fleet.config.echo:
                    fleet.stats.answered(action, time.perf_counter() - started)
                    return {}
            await self._handle_unsolicited(frame)
        fleet.stats.error(f"timeout:{action}")
        return None


class Fleet:
    """N simulated stations in this process. Use `await Fleet(config).run()`."""

    def __init__(self, config: FleetConfig) -> None:
        if config.stations < 0 or config.connect_concurrency < 1:
            raise ValueError("stations must be >= 0 and connect_concurrency >= 1")
        if config.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
        self.config = config
        self.v201 = config.protocol == "ocpp2.0.1"
        self.build_payload = profiles201.build_payload if self.v201 else build_payload
        self.answer_csms_call = profiles201.answer_csms_call if self.v201 else answer_csms_call
        self.profile = Profile(config.profile, speed=config.speed, heartbeat_s=config.heartbeat_s, ramp_s=config.ramp_s)
        self.stats = _Stats()
        self._limiter = trio.CapacityLimiter(config.connect_concurrency)
        self._go = trio.Event()
        self.waiting: set[trio.CancelScope] = set()  # stations waiting for go
        self._settled = 0
        self._connected_first = 0
        self._all_settled = trio.Event()
        self._fake_tx = 0
        self._headers: list[tuple[bytes, bytes]] = []

    def station_url(self, station_id: str, index: int = 0) -> str:
        """Base URL + station id; with `config.urls`, stations are spread round-robin over those bases (several
        replicas addressed directly, no balancer process eating a core)."""
        urls = self.config.urls
        base = urls[index % len(urls)] if urls else self.config.url
        return f"{base.rstrip('/')}/{station_id}"

    def _settle(self, ok: bool) -> None:
        self._settled += 1
        self._connected_first += ok
        if self._settled >= self.config.stations:
            self._all_settled.set()

    def _release(self) -> None:
        self._go.set()
        for scope in list(self.waiting):
            scope.cancel()

    async def _station(self, index: int) -> None:
        config = self.config
        rng = random.Random(config.seed * 1_000_003 + index)
        station_id = f"{config.prefix}{index:06d}"
        url = self.station_url(station_id, index)
        headers = []
        if config.password:
            token = base64.b64encode(f"{station_id}:{config.password}".encode()).decode()
            headers.append((b"Authorization", f"Basic {token}".encode()))
        state = StationState(station_id, config.connectors, rng)
        in_flight: tuple[Step, Payload] | None = None  # unanswered when the connection dropped: re-sent
        booted = settled = rebased = False
        booted_at = 0.0
        failures = 0
        while True:
            try:
                async with trio.open_nursery() as nursery:
                    self.stats.queued_at[station_id] = trio.current_time()
                    async with self._limiter:
                        self.stats.dialed_at[station_id] = trio.current_time()
                        with trio.fail_after(config.connect_timeout):
                            ws = await connect_websocket_url(
                                nursery,
                                url,
                                subprotocols=[config.protocol],
                                extra_headers=headers,
                                max_message_size=1 << 20,
                            )
                    self.stats.connects += 1
                    self.stats.connected_at[station_id] = trio.current_time()
                    session = _Session(self, state, ws)
                    try:
                        if not booted:
                            booted_at = trio.current_time()
                            self.profile.on_boot(state, booted_at, rng)
                            booted = True
                            if not settled:  # the boot sequence is part of connecting
                                while state.queue and state.queue[0][0] in (
                                    "BootNotification",
                                    "StatusNotification",
                                ):
                                    step = state.queue.popleft()
                                    payload = self.build_payload(state, step, self._tag(state, step, rng))
                                    assert payload is not None
                                    await session.call(step, payload)
                        else:  # a reconnect: tell the CSMS every connector's status first, as firmware does
                            answered = True
                            for connector in range(1, state.connectors + 1):
                                step = ("StatusNotification", connector, state.status[connector])
                                payload = self.build_payload(state, step, self._tag(state, step, rng))
                                assert payload is not None
                                answered = await session.call(step, payload) is not None and answered
                            for _ in range(config.resend_on_reconnect):
                                step = ("MeterValues", 1, "")
                                payload = self.build_payload(state, step, self._tag(state, step, rng))
                                assert payload is not None
                                answered = await session.call(step, payload) is not None and answered
                            if answered:
                                self.stats.served_at[station_id] = trio.current_time()
                        if config.station_ping_s > 0:
                            nursery.start_soon(self._ping, ws)
                        if not settled:
                            settled = True
                            self._settle(True)
                        failures = 0
                        await session.idle_until(math.inf, self._go)
                        if config.rebase_at_go and not rebased:
                            rebased = True  # once: a reconnect keeps its schedule
                            shift = trio.current_time() - booted_at
                            state.heap = [(due + shift, seq, event, c) for due, seq, event, c in state.heap]
                        due = None
                        while True:
                            if in_flight is None:
                                due, step = self.profile.next_step(state, trio.current_time(), rng)
                                if due > trio.current_time():
                                    await session.idle_until(due)
                                payload = self.build_payload(state, step, self._tag(state, step, rng))
                                if payload is None:
                                    continue
                                in_flight = (step, payload)
                            answer = await session.call(*in_flight, due if config.open_loop else None)
                            if answer is not None and not self.v201:  # 2.0.1 stations make their own ids
                                self._fake_tx += 1
                                absorb_answer(state, in_flight[0], answer, fake_tx=self._fake_tx)
                            in_flight = None
                    finally:
                        with trio.move_on_after(1) as cleanup:
                            cleanup.shield = True
                            await ws.aclose()
            except (*_EXPECTED, BaseExceptionGroup) as raised:
                exc = _sole(raised)
                if exc is None:
                    raise
                if isinstance(exc, _Closed):
                    self.stats.disconnects += 1
                    self.stats.closes.append((station_id, trio.current_time(), any(t is not None for t in state.tx)))
                    self.stats.error(str(exc))
                elif isinstance(exc, ConnectionRejected):
                    self.stats.error(f"rejected:{exc.status_code}")
                else:
                    self.stats.error(f"connect:{type(exc).__name__}")
            if not settled:
                settled = True
                self._settle(False)
            failures += 1
            delay = min(config.backoff_cap, config.backoff_base * 2 ** min(failures - 1, 16))
            await trio.sleep(delay * rng.uniform(0.5, 1.0))

    def _tag(self, state: StationState, step: Step, rng: random.Random) -> str:
        return session_tag(state, step, self.config.id_tag, self.config.id_tags, rng)

    async def _measure_loop_lag(self, interval: float = 0.05) -> None:
        """How late this process's own loop wakes up: a generator stall shows here, not as server latency."""
        while True:
            before = time.perf_counter()
            await trio.sleep(interval)
            if self.stats.recording:
                self.stats.loop_lag.record(max(0.0, time.perf_counter() - before - interval))

    async def _ping(self, ws: Any) -> None:
        """Station-side keep-alive: a pong later than the interval ends the connection (reconnect)."""
        interval = self.config.station_ping_s
        while True:
            await trio.sleep(interval)
            with trio.move_on_after(interval):
                try:
                    await ws.ping()
                except ConnectionClosed:
                    return
                continue
            raise _Closed("pong timeout")

    async def run(self, on_connected: Callable[[dict[str, Any]], Awaitable[None]] | None = None) -> dict[str, Any]:
        """Connect everyone, call `on_connected(report)`, warm up, measure, stop; return the result dict."""
        config = self.config
        async with trio.open_nursery() as nursery:
            started = time.perf_counter()
            for index in range(config.first_index, config.first_index + config.stations):
                nursery.start_soon(self._station, index)
            if config.stations == 0:
                self._all_settled.set()
            nursery.start_soon(self._measure_loop_lag)
            with trio.move_on_after(config.settle_timeout):
                await self._all_settled.wait()
            connect_s = time.perf_counter() - started
            connect = {
                "connected": self._connected_first,
                "failed": self._settled - self._connected_first,
                "unsettled": config.stations - self._settled,
                "seconds": round(connect_s, 3),
                "rate_per_s": round(self._connected_first / connect_s, 1) if connect_s > 0 else 0.0,
                "errors": dict(self.stats.errors),
                "rss_kib": rss_kib(os.getpid()),
            }
            # Tens of thousands of stations' objects live for the whole run: out of the collector's reach, or
            # its full collections stall this load generator for seconds and it reports its own stalls.
            gc.collect()
            gc.freeze()
            if on_connected is not None:
                await on_connected(connect)
            self._release()
            await trio.sleep(config.warmup)
            self.stats.recording = True
            cpu0, t0 = time.process_time(), time.perf_counter()
            sent0, connects0, disconnects0 = self.stats.sent, self.stats.connects, self.stats.disconnects
            await trio.sleep(config.duration)
            self.stats.recording = False
            window = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            result = {
                "config": asdict(config),
                "processes": 1,
                "connect": connect,
                "window_s": window,
                "sent": self.stats.sent - sent0,
                "answered": self.stats.latency.count,
                "latency": self.stats.latency.to_json(),
                "loop_lag": self.stats.loop_lag.to_json(),
                "by_action": {name: hist.to_json() for name, hist in self.stats.by_action.items()},
                "window_errors": dict(self.stats.window_errors),
                "errors": dict(self.stats.errors),
                "connects": self.stats.connects - connects0,
                "disconnects": self.stats.disconnects - disconnects0,
                "csms_calls": self.stats.csms_calls,
                "client_cpu_s": cpu,
                "client_rss_kib": rss_kib(os.getpid()),
            }
            nursery.cancel_scope.cancel()
        return result


async def run_fleet(
    config: FleetConfig, on_connected: Callable[[dict[str, Any]], Awaitable[None]] | None = None
) -> dict[str, Any]:
    """Run one fleet in this trio process; see `Fleet.run`."""
    return await Fleet(config).run(on_connected)


# --------------------------------------------------------------------------- results


def merge_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine per-process results (same window length) into one, histograms merged exactly."""
    if not results:
        raise ValueError("no results to merge")
    latency, loop_lag = LatencyHistogram(), LatencyHistogram()
    by_action: dict[str, LatencyHistogram] = {}
    merged: dict[str, Any] = {"processes": len(results), "config": dict(results[0]["config"])}
    merged["config"]["stations"] = sum(r["config"]["stations"] for r in results)
    merged["config"]["first_index"] = min(r["config"]["first_index"] for r in results)
    counters = ("sent", "answered", "connects", "disconnects", "csms_calls", "client_cpu_s", "client_rss_kib")
    for key in counters:
        merged[key] = sum(r[key] for r in results)
    merged["window_s"] = max(r["window_s"] for r in results)
    for key in ("errors", "window_errors"):
        total: dict[str, int] = {}
        for r in results:
            for kind, n in r[key].items():
                total[kind] = total.get(kind, 0) + n
        merged[key] = total
    connect = {k: sum(r["connect"][k] for r in results) for k in ("connected", "failed", "unsettled", "rss_kib")}
    connect["seconds"] = max(r["connect"]["seconds"] for r in results)
    connect["rate_per_s"] = round(connect["connected"] / connect["seconds"], 1) if connect["seconds"] else 0.0
    merged["connect"] = connect
    for r in results:
        latency.merge(LatencyHistogram.from_json(r["latency"]))
        if "loop_lag" in r:  # one process's stall is the fleet's
            loop_lag.merge(LatencyHistogram.from_json(r["loop_lag"]))
        for name, data in r["by_action"].items():
            by_action.setdefault(name, LatencyHistogram()).merge(LatencyHistogram.from_json(data))
    merged["latency"] = latency.to_json()
    merged["loop_lag"] = loop_lag.to_json()
    merged["by_action"] = {name: hist.to_json() for name, hist in by_action.items()}
    return merged


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a result: rate, latency percentiles (ms), errors, per-action counts."""
    window = result["window_s"] or 1.0
    latency = LatencyHistogram.from_json(result["latency"]).summary_ms()
    return {
        "stations": result["config"]["stations"],
        "profile": result["config"]["profile"],
        "protocol": result["config"].get("protocol", "ocpp1.6"),
        "processes": result["processes"],
        "window_s": round(window, 2),
        "msgs_per_s": round(result["answered"] / window, 1),
        **{k: latency[k] for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms")},
        "answered": result["answered"],
        "errors_in_window": sum(result["window_errors"].values()),
        "errors_total": sum(result["errors"].values()),
        "error_kinds": result["errors"],
        "connect": result["connect"],
        "disconnects": result["disconnects"],
        "client_cpu_pct": round(100 * result["client_cpu_s"] / window, 1),
        "generator_loop_lag": _lag_summary(result.get("loop_lag")),
        "by_action": {
            name: LatencyHistogram.from_json(data).summary_ms() for name, data in sorted(result["by_action"].items())
        },
    }


def _lag_summary(data: dict[str, Any] | None) -> dict[str, float]:
    """p99 and max of the generator's loop lag (ms), from a 50 ms probe in every worker."""
    if not data:
        return {}
    summary = LatencyHistogram.from_json(data).summary_ms()
    return {"p99_ms": summary["p99_ms"], "max_ms": summary["max_ms"]}


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def raise_fd_limit() -> int:
    """Raise this process's soft open-file limit to the hard limit (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------------- several processes


def split(config: FleetConfig, processes: int) -> list[FleetConfig]:
    """One config per worker process, station index ranges disjoint and covering the fleet."""
    processes = max(1, min(processes, max(config.stations, 1)))
    base, extra = divmod(config.stations, processes)
    configs, first = [], config.first_index
    for worker in range(processes):
        count = base + (worker < extra)
        values = {
            **asdict(config),
            "stations": count,
            "first_index": first,
            "seed": config.seed + worker,
            "connect_concurrency": max(1, config.connect_concurrency // processes),
        }
        configs.append(FleetConfig(**values))
        first += count
    return configs


def run_processes(
    config: FleetConfig,
    processes: int,
    *,
    on_connected: Callable[[dict[str, Any]], None] | None = None,
    on_go: Callable[[], None] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run the fleet in `processes` worker subprocesses (synchronous; call it from a plain script).

    Workers connect their share and report; once all have, `on_connected(merged_connect_report)` runs (e.g. to
    read the server's RSS), every worker is told "go" at once, `on_go()` runs, and the merged result returns.
    """
    configs = split(config, processes)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    deadline = None if timeout is None else time.monotonic() + timeout
    workers: list[subprocess.Popen[str]] = []
    try:
        for worker_config in configs:
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.simulator",
                "--worker",
                json.dumps(asdict(worker_config)),
            ]
            workers.append(
                subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
            )
        reports = [_read_line(w, "connected", deadline) for w in workers]
        if on_connected is not None:
            connect = {k: sum(r[k] for r in reports) for k in ("connected", "failed", "unsettled", "rss_kib")}
            connect["seconds"] = max(r["seconds"] for r in reports)
            on_connected(connect)
        for w in workers:
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        if on_go is not None:
            on_go()
        results = [_read_line(w, "result", deadline)["result"] for w in workers]
        for w in workers:
            # Its result is in; closing tens of thousands of sockets may take longer: killed below.
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.wait(timeout=30)
        return merge_results(results)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()


def _read_line(worker: subprocess.Popen[str], event: str, deadline: float | None) -> dict[str, Any]:
    assert worker.stdout is not None
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"simulator worker {worker.pid} did not report {event!r} in time")
        line = worker.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator worker {worker.pid} exited ({worker.wait()}) before reporting {event!r}")
        message = json.loads(line)
        if message.get("event") == event:
            return dict(message)


async def _worker(config: FleetConfig) -> None:
    """Worker side of `run_processes`: JSON lines on stdout, "go" on stdin."""

    async def barrier(connect: dict[str, Any]) -> None:
        print(json.dumps({"event": "connected", **connect}), flush=True)
        line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        if not line:
            raise SystemExit("simulator worker: parent went away")

    result = await run_fleet(config, barrier)
    print(json.dumps({"event": "result", "result": result}), flush=True)


# --------------------------------------------------------------------------- command line


def _parse(argv: list[str] | None) -> tuple[FleetConfig, int, str | None]:
    import argparse

    defaults = FleetConfig(url="", stations=0)
    p = argparse.ArgumentParser(prog="simulator", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("url", help="base OCPP URL; the station id is appended (ws://127.0.0.1:9000/ocpp)")
    p.add_argument("--stations", type=int, default=100)
    p.add_argument("--profile", choices=("idle", "stress", "realistic"), default="stress")
    p.add_argument("--duration", type=float, default=defaults.duration, help="measurement window (s)")
    p.add_argument("--warmup", type=float, default=defaults.warmup)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--prefix", default=defaults.prefix, help="station id prefix")
    p.add_argument("--first-index", type=int, default=0)
    p.add_argument("--connectors", type=int, default=defaults.connectors)
    p.add_argument("--speed", type=float, default=defaults.speed, help="time compression for realistic/idle")
    p.add_argument("--heartbeat", type=float, default=defaults.heartbeat_s, help="heartbeat interval (s)")
    p.add_argument("--id-tag", default=defaults.id_tag)
    p.add_argument("--password", default="", help="HTTP Basic password (security profile 1)")
    p.add_argument("--connect-concurrency", type=int, default=defaults.connect_concurrency)
    p.add_argument("--call-timeout", type=float, default=defaults.call_timeout)
    p.add_argument("--id-tags", type=int, default=defaults.id_tags, help="sessions draw one of this many tags")
    p.add_argument("--open-loop", action="store_true", help="latency from when each call was due (realistic/idle)")
    p.add_argument("--ramp", type=float, default=0.0, help="realistic: start in the steady state over this many s")
    p.add_argument("--ocpp", choices=PROTOCOLS, default=defaults.protocol, help="protocol the stations speak")
    p.add_argument("--echo", action="store_true", help="the server echoes frames (transport ceiling)")
    p.add_argument("--json", help="also write the full result here")
    a = p.parse_args(argv)
    config = FleetConfig(
        url=a.url,
        stations=a.stations,
        profile=a.profile,
        duration=a.duration,
        warmup=a.warmup,
        first_index=a.first_index,
        prefix=a.prefix,
        connectors=a.connectors,
        speed=a.speed,
        heartbeat_s=a.heartbeat,
        id_tag=a.id_tag,
        password=a.password,
        connect_concurrency=a.connect_concurrency,
        call_timeout=a.call_timeout,
        echo=a.echo,
        protocol=a.ocpp,
        id_tags=a.id_tags,
        open_loop=a.open_loop,
        ramp_s=a.ramp,
        rebase_at_go=a.ramp > 0,
    )
    return config, a.processes, a.json


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    raise_fd_limit()
    gc.set_threshold(50_000, *gc.get_threshold()[1:])  # young collections only every 50,000 net allocations
    if args[:1] == ["--worker"]:
        values = json.loads(args[1])
        values["urls"] = tuple(values.get("urls", ()))
        trio.run(_worker, FleetConfig(**values))
        return
    config, processes, json_path = _parse(args)
    result = run_processes(config, processes) if processes > 1 else trio.run(run_fleet, config)
    summary = summarize(result)
    if json_path:
        Path(json_path).write_text(json.dumps({"summary": summary, "result": result}, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "by_action"}, indent=2))


if __name__ == "__main__":
    main()
