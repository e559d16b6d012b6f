"""Failover and drain benchmark: how fast N stations are owned and served again after a replica dies or drains.

    python -m benchmarks.bench_failover                      # N = 1000
    python -m benchmarks.bench_failover --stations 1000 5000

Real processes: Postgres, etcd, three `csms serve` replicas, a TCP balancer process in front of their OCPP ports
that routes only to ready replicas (as a cloud load balancer with readiness checks does), and a fleet of idle
simulated stations (benchmarks/simulator.py: reconnect with jittered backoff, like firmware).

1. Failover: replica A alone takes all N stations; B and C start; A is SIGKILLed. Measured from the kill: when
   every station is owned again in etcd by B or C ("owned"), when every station has a new accepted WebSocket
   ("serving"), and the claim rate (claims/s over the reconnect storm).
2. Drain: C is SIGTERMed (its share moves to B), then A and C are started again, so B owns all N; B is
   SIGTERMed. Measured from the signal: B's exit (and exit code), when every station is owned by A or C, and
   when every station is served again. The drain is paced by CSMS_DRAIN_RATE (stations closed per second),
   so `--drain-rate` bounds it from below: N / rate seconds.

Results go to benchmarks/results/failover-<date>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import orjson
import trio

from benchmarks.harness import MachineMeter, calibration_ms, tree_cpu_seconds
from benchmarks.latency import LatencyHistogram
from benchmarks.simulator import Fleet, FleetConfig, raise_fd_limit
from cluster import EtcdClient, EtcdUnavailable
from devcluster.balancer import TcpBalancer
from devcluster.etcd import EtcdServer
from devcluster.postgres import PostgresServer
from devcluster.replica import ReplicaProcess

RESULTS = Path(__file__).resolve().parent / "results"
POLL = 0.1
PERCENTILES = (("p50", 0.5), ("p99", 0.99), ("max", 1.0))


_MEANS = {  # histogram -> the label its means are split by ("" for none)
    "csms_ocpp_message_duration_seconds": "action",
    "csms_db_commit_duration_seconds": "",
    "csms_db_query_duration_seconds": "",
    "csms_etcd_request_duration_seconds": "",
    "csms_event_loop_lag_seconds": "",
}


def metric_means(texts: list[str]) -> dict[str, float]:
    """Mean seconds, over several replicas' /metrics texts, of each OCPP action's handling (":out": the
    station's answer to a CSMS call), a group commit, a read, an etcd request and the event loop's lag: where
    a station's dialled-to-served time goes inside the replicas."""
    totals: dict[str, float] = {}
    for text in texts:
        for line in text.splitlines():
            metric, _, value = line.rpartition(" ")
            family, _, labels = metric.partition("{")
            base, _, kind = family.rpartition("_")
            if kind not in ("sum", "count") or base not in _MEANS:
                continue
            key = base.removeprefix("csms_").removesuffix("_seconds")
            label = _MEANS[base]
            if label and f'{label}="' in labels:
                key += ":" + labels.split(f'{label}="', 1)[1].split('"', 1)[0]
            if 'direction="out"' in labels:
                key += ":out"
            totals[f"{key}|{kind}"] = totals.get(f"{key}|{kind}", 0.0) + float(value)
    keys = sorted({k.split("|")[0] for k in totals})
    return {k: round(totals[f"{k}|sum"] / totals[f"{k}|count"], 4) for k in keys if totals.get(f"{k}|count")}


async def _loop_lag(into: LatencyHistogram, interval: float = 0.05) -> None:
    """How late this process's loop (the load generator's) wakes a sleeper, until cancelled."""
    while True:
        before = time.perf_counter()
        await trio.sleep(interval)
        into.record(max(0.0, time.perf_counter() - before - interval))


class ReadyBalancer(TcpBalancer):
    """The dev balancer plus what a cloud load balancer does: route only to replicas whose /readyz passes.

    Health checks as slow as a cloud balancer's (defaults: every 5 s, 2 s timeout, 2 failures to take a
    replica out, 2 successes to put it back), so a dead or draining replica keeps getting new connections for
    several seconds and a new replica waits for its checks before it gets any. Runs in its own process
    (`--balancer`), so proxying a reconnect storm does not compete with the stations for file handles.
    """

    def __init__(self, pairs: list[tuple[int, int]], health: tuple[float, float, int, int]) -> None:
        super().__init__([("127.0.0.1", ocpp) for ocpp, _ in pairs])
        self.pairs = pairs
        self.interval, self.timeout, self.unhealthy_after, self.healthy_after = health

    async def check_readiness(self) -> None:
        streak = {ocpp: 0 for ocpp, _ in self.pairs}  # > 0: successes in a row, < 0: failures in a row
        healthy = {ocpp: True for ocpp, _ in self.pairs}
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            while True:
                for ocpp, api in self.pairs:
                    try:
                        ok = (await http.get(f"http://127.0.0.1:{api}/readyz")).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    streak[ocpp] = max(1, streak[ocpp] + 1) if ok else min(-1, streak[ocpp] - 1)
                    if streak[ocpp] >= self.healthy_after:
                        healthy[ocpp] = True
                    elif -streak[ocpp] >= self.unhealthy_after:
                        healthy[ocpp] = False
                ready = [("127.0.0.1", ocpp) for ocpp, _ in self.pairs if healthy[ocpp]]
                self.backends = ready or self.backends
                await trio.sleep(self.interval)


async def _serve_balancer(pairs: list[tuple[int, int]], health: tuple[float, float, int, int]) -> None:
    balancer = ReadyBalancer(pairs, health)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(balancer.check_readiness)
        port = await nursery.start(balancer.serve, "127.0.0.1", 0)
        print(port, flush=True)


def _start_balancer(replicas: list[ReplicaProcess], args: argparse.Namespace) -> tuple[subprocess.Popen[str], int]:
    pairs = ",".join(f"{r.ocpp_port}:{r.api_port}" for r in replicas)
    health = [str(args.health_interval), str(args.health_timeout), str(args.unhealthy_after), str(args.healthy_after)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_failover", "--balancer", pairs, "--health", ",".join(health)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise RuntimeError(f"balancer did not start: {line!r}")
    return proc, int(line)


class Bench:
    """One run for one fleet size: three replicas, one balancer, one fleet."""

    def __init__(
        self,
        n: int,
        run: int,
        database_url: str,
        etcd_url: str,
        args: argparse.Namespace,
        log_dir: Path,
        servers: dict[str, int | None] | None = None,
    ) -> None:
        self.n = n
        self.servers = {name: pid for name, pid in (servers or {}).items() if pid}  # postgres, etcd: their pids
        self.args = args
        self.prefix = f"/bench-failover-{os.getpid()}-{n}-{run}/"
        self.etcd = EtcdClient([etcd_url], timeout=10.0)
        drain_timeout = max(60.0, 3 * n / args.drain_rate)
        env = {
            "CSMS_DATABASE_URL": database_url,
            "CSMS_ETCD_ENDPOINTS": etcd_url,
            "CSMS_ETCD_PREFIX": self.prefix,
            "CSMS_REGISTRATION": "auto",
            "CSMS_API_TOKENS": "bench-failover-token",
            "CSMS_INTERNAL_SECRET": secrets.token_urlsafe(32),
            "CSMS_LEASE_TTL": str(args.lease_ttl),
            "CSMS_DRAIN_RATE": str(args.drain_rate),
            "CSMS_DRAIN_TIMEOUT": str(drain_timeout),
            "CSMS_LOG_LEVEL": "warning",
            "CSMS_LOG_FORMAT": "text",
        }
        self.replicas = {name: ReplicaProcess(f"{name}-{n}-{run}", env, log_dir=log_dir) for name in "abc"}
        self.fleet: Fleet | None = None
        self.balancer_pid = 0
        self.result: dict[str, Any] = {"stations": n, "run": run}

    def node(self, name: str) -> str:
        return self.replicas[name].node_id

    async def owners(self) -> dict[str, int]:
        """node id -> stations it owns, from etcd."""
        for attempt in range(5):  # etcd on a loaded machine may miss one deadline: that is no result
            try:
                result = await self.etcd.get(self.prefix + "owners/", prefix=True)
                break
            except EtcdUnavailable:
                if attempt == 4:
                    raise
        counts: dict[str, int] = {}
        for kv in result.kvs:
            node = str(orjson.loads(kv.value).get("node_id"))
            counts[node] = counts.get(node, 0) + 1
        return counts

    @property
    def connects(self) -> int:
        assert self.fleet is not None
        return self.fleet.stats.connects

    async def start(self, *names: str) -> None:
        for name in names:
            self.replicas[name].start()
        async with trio.open_nursery() as nursery:
            for name in names:
                nursery.start_soon(trio.to_thread.run_sync, self.replicas[name].wait_ready, 60.0)

    async def wait(self, what: str, done: Callable[[], Awaitable[bool]], timeout: float) -> float:
        started = trio.current_time()
        with trio.move_on_after(timeout):
            while not await done():
                await trio.sleep(POLL)
            return trio.current_time() - started
        raise TimeoutError(f"{what}: not within {timeout}s; owners {await self.owners()}")

    async def measure_move(self, started: float, to: set[str], moving: int = 0) -> dict[str, Any]:
        """Seconds from `started` until all N are owned by `to`, until `moving` distinct stations (default N)
        have connected again ("connected"), and until that many have had their StatusNotifications (and queued
        messages, `--resend`) answered after reconnecting ("serving": what a real station needs before it
        carries on). Also from the first claim a survivor made, i.e. from when reconnects started to land: the
        part the replicas control. Stations are counted once however often they reconnect meanwhile.

        Ownership is followed through one watch on the owners prefix (one range read, then only the changes):
        re-reading all N owner keys ten times a second would itself load etcd and this process (the fleet runs
        here too) in the middle of the storm being measured.
        """
        owned_at = served_at = connected_at = first_claim = None
        moving = moving or self.n
        assert self.fleet is not None
        stats = self.fleet.stats
        deadline = started + self.args.timeout
        prefix = self.prefix + "owners/"
        snapshot = await self.etcd.get(prefix, prefix=True)
        owner = {kv.key: str(orjson.loads(kv.value).get("node_id")) for kv in snapshot.kvs}
        moved = already = sum(1 for node in owner.values() if node in to)
        async with trio.open_nursery() as nursery:

            async def follow() -> None:
                nonlocal moved
                async with self.etcd.watch(prefix, prefix=True, start_revision=snapshot.revision + 1) as events:
                    async for event in events:
                        was = owner.pop(event.kv.key, None)
                        moved -= was in to
                        if event.type == "PUT":
                            node = owner[event.kv.key] = str(orjson.loads(event.kv.value).get("node_id"))
                            moved += node in to

            nursery.start_soon(follow)
            while owned_at is None or served_at is None or connected_at is None:
                if trio.current_time() > deadline:
                    raise TimeoutError(f"not all {self.n} moved within {self.args.timeout}s: {await self.owners()}")
                now = trio.current_time()
                if first_claim is None and moved > already:
                    first_claim = now
                if owned_at is None and moved >= self.n:
                    owned_at = now
                if connected_at is None and stats.stations_since(stats.connected_at, started) >= moving:
                    connected_at = now
                if served_at is None and stats.stations_since(stats.served_at, started) >= moving:
                    served_at = now
                await trio.sleep(POLL)
            nursery.cancel_scope.cancel()
        assert first_claim is not None
        return {
            **self._per_station(started),
            "all_owned_s": round(owned_at - started, 2),
            "all_connected_s": round(connected_at - started, 2),
            "all_serving_s": round(served_at - started, 2),
            "serving_after_first_claim_s": round(served_at - first_claim, 2),
            "first_claim_s": round(first_claim - started, 2),
            "claims_per_s": round(self.n / max(owned_at - first_claim, POLL), 1),
            "claims_per_s_from_event": round(self.n / max(owned_at - started, POLL), 1),
        }

    def _per_station(self, started: float) -> dict[str, Any]:
        """Per station served again since ``started``: seconds from dialling (its successful attempt left the
        generator's connect limiter) to served, i.e. what the balancer and the CSMS took for it, and from its
        attempt's start (after its back-off) to served, which adds the generator's own connect queue."""
        assert self.fleet is not None
        stats = self.fleet.stats
        dialed, queued = [], []
        for station, served in stats.served_at.items():
            if served >= started and stats.dialed_at.get(station, served + 1) <= served:
                dialed.append(served - stats.dialed_at[station])
                queued.append(served - stats.queued_at[station])

        def spread(values: list[float]) -> dict[str, float]:
            values.sort()
            if not values:
                return {}
            return {q: round(values[min(len(values) - 1, int(p * len(values)))], 2) for q, p in PERCENTILES}

        per_dial = spread(dialed)
        return {
            "dialed_to_served_s": per_dial,
            "attempt_to_served_s": spread(queued),
            "dialed_to_served_max_s": per_dial.get("max", 0.0),
        }

    async def scenario(self, connect_report: dict[str, Any]) -> None:
        n = self.n
        self.result["connect"] = {k: connect_report[k] for k in ("connected", "failed", "seconds", "rate_per_s")}
        events = self.args.events
        if "failover" in events:
            await self.failover()
        if "drain" in events:
            await self.drain()
        if "vanish" in events:
            await self.vanish()
        assert self.fleet is not None
        self.result["client_errors"] = dict(self.fleet.stats.errors)
        print(f"[{n}] client errors: {self.result['client_errors']}", flush=True)

    async def failover(self) -> None:
        """SIGKILL the replica owning every station (the kernel closes its sockets: stations see it at once)."""
        a, b, c = self.node("a"), self.node("b"), self.node("c")
        await self.wait("all on A", lambda: self._all_on({a}), 60)
        await self.start("b", "c")
        await self.admitted()
        print(f"[{self.n}] {self.n} stations on {a}; B and C ready", flush=True)
        calibration = calibration_ms()  # the machine's speed now: runs hours apart differ by it too
        on_a = (await self.owners()).get(a, 0)  # a rebalancing round may already have moved a few
        killed = trio.current_time()
        profiling = self._profile("failover", "b", "c")
        cpu_before = self.cpu_seconds("b", "c")
        host = MachineMeter()
        host.start()
        lag = LatencyHistogram()  # the load generator's own loop over the move: is a slow station ours?
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_loop_lag, lag)
            await trio.to_thread.run_sync(self.replicas["a"].kill)
            failover = await self.measure_move(killed, {b, c}, moving=on_a)
            nursery.cancel_scope.cancel()
        summary = lag.summary_ms()
        failover["generator_loop_lag_ms"] = {k: summary[f"{k}_ms"] for k in ("p50", "p99", "max")}
        wall = trio.current_time() - killed
        failover.update(self._cpu_budget(cpu_before, self.cpu_seconds("b", "c"), wall, on_a))
        failover["machine_state"] = {**host.stop(), "calibration_ms": calibration}
        await trio.to_thread.run_sync(profiling)
        failover["stations_on_killed_replica"] = on_a
        failover["spread"] = await self.owners()
        failover["handshakes"] = await self.handshake_phases("b", "c")
        failover["server_means_s"] = await self.server_means("b", "c")
        self.result["failover"] = failover
        print(f"[{self.n}] failover: {failover}", flush=True)

    def cpu_seconds(self, *names: str) -> dict[str, float]:
        """CPU seconds used so far by the named replicas, this process (the load generator), the balancer,
        Postgres and etcd (each with its children): every process that shares the machine's cores."""
        used = {"generator": time.process_time()}
        for name in names:
            proc = self.replicas[name].proc
            assert proc is not None
            used[name] = tree_cpu_seconds(proc.pid)
        if self.balancer_pid:
            used["balancer"] = tree_cpu_seconds(self.balancer_pid)
        for server, pid in self.servers.items():
            used[server] = tree_cpu_seconds(pid)
        return used

    @staticmethod
    def _cpu_budget(before: dict[str, float], after: dict[str, float], wall: float, moved: int) -> dict[str, Any]:
        """Who had work over the move (share of one core each) and CPU milliseconds per moved station, split
        into the CSMS's part (replicas, Postgres, etcd) and the harness's (generator, balancer). Their sum over
        the machine's cores is the fastest this machine could move them all: the floor under "all serving"."""
        used = {who: after[who] - before.get(who, after[who]) for who in after}
        harness = {"generator", "balancer"}
        csms_s = sum(v for who, v in used.items() if who not in harness)
        harness_s = sum(v for who, v in used.items() if who in harness)
        cores = os.cpu_count() or 1
        return {
            "cpu_share": {who: round(v / wall, 2) for who, v in used.items()},
            "cpu_ms_per_station": {
                "csms": round(1000 * csms_s / max(1, moved), 2),
                "harness": round(1000 * harness_s / max(1, moved), 2),
            },
            "machine_busy": round((csms_s + harness_s) / (wall * cores), 2),
            "cpu_floor_s": round((csms_s + harness_s) / cores, 1),
            "csms_cpu_floor_s": round(csms_s / cores, 1),
        }

    async def handshake_phases(self, *names: str) -> dict[str, float]:
        """Mean seconds per handshake phase over ``names`` (csms_handshake_phase_seconds: where a slot's time
        goes), with the number of slot waits and of refused handshakes (503: no slot)."""
        totals: dict[str, float] = {}
        async with httpx.AsyncClient(timeout=10.0) as http:
            for name in names:
                text = (await http.get(self.replicas[name].api_url + "/metrics")).text
                for line in text.splitlines():
                    metric, _, value = line.rpartition(" ")
                    for kind in ("sum", "count"):
                        if metric.startswith(f"csms_handshake_phase_seconds_{kind}{{"):
                            phase = metric.split('phase="', 1)[1].split('"', 1)[0]
                            totals[f"{phase}_{kind}"] = totals.get(f"{phase}_{kind}", 0.0) + float(value)
                    if metric.startswith("csms_handshake_refusals_total{"):
                        totals["refused"] = totals.get("refused", 0.0) + float(value)
        phases = {k[: -len("_sum")] for k in totals if k.endswith("_sum")}
        means = {p: round(totals[f"{p}_sum"] / max(1.0, totals[f"{p}_count"]), 3) for p in sorted(phases)}
        return {**means, "handshakes": totals.get("slot_count", 0.0), "refused": totals.get("refused", 0.0)}

    async def server_means(self, *names: str) -> dict[str, float]:
        """Mean seconds over ``names`` of what a reconnect waits for inside the replicas (``metric_means``)."""
        async with httpx.AsyncClient(timeout=10.0) as http:
            texts = [(await http.get(self.replicas[name].api_url + "/metrics")).text for name in names]
        return metric_means(texts)

    async def drain(self) -> None:
        """First C's share moves to B, then B (owning all N) drains to the restarted A and C."""
        a, b, c = self.node("a"), self.node("b"), self.node("c")
        if not self.replicas["b"].running:
            await self.start("b")
        signalled = trio.current_time()
        self.replicas["c"].terminate()
        code_c = await trio.to_thread.run_sync(self.replicas["c"].wait, self.args.timeout)
        await self.wait("all on B", lambda: self._all_on({b}), self.args.timeout)
        self.result["drain_share"] = {"exit_code": code_c, "seconds": round(trio.current_time() - signalled, 2)}
        await self.start("a", "c")
        await self.admitted()
        on_b = (await self.owners()).get(b, 0)  # rebalancing may move some to A and C before the SIGTERM
        signalled = trio.current_time()
        self.replicas["b"].terminate()
        async with trio.open_nursery() as nursery:
            exit_info: dict[str, Any] = {}

            async def wait_exit() -> None:
                exit_info["code"] = await trio.to_thread.run_sync(self.replicas["b"].wait, self.args.timeout)
                exit_info["seconds"] = round(trio.current_time() - signalled, 2)

            nursery.start_soon(wait_exit)
            drain = await self.measure_move(signalled, {a, c}, moving=on_b)
        drain["exit_code"] = exit_info["code"]
        drain["exit_s"] = exit_info["seconds"]
        drain["stations_on_drained_replica"] = on_b
        drain["drain_rate"] = self.args.drain_rate
        drain["paced_minimum_s"] = round(on_b / self.args.drain_rate, 2)
        drain["spread"] = await self.owners()
        self.result["drain"] = drain
        print(f"[{self.n}] drain: {drain}", flush=True)

    async def vanish(self) -> None:
        """The host of the replica owning the most stations vanishes: SIGSTOP, so no FIN and no RST; stations
        notice by their own ping timeout, the balancer by failed health checks, the cluster by the lease."""
        down = [name for name in "abc" if not self.replicas[name].running]
        if down:
            await self.start(*down)
            await self.admitted()
        counts = await self.owners()
        victim = max("abc", key=lambda name: counts.get(self.node(name), 0))
        on_victim = counts.get(self.node(victim), 0)
        survivors = {self.node(name) for name in "abc" if name != victim}
        others = [name for name in "abc" if name != victim]
        cpu_before = self.cpu_seconds(*others)
        stopped = trio.current_time()
        self.replicas[victim].pause()
        try:
            vanish = await self.measure_move(stopped, survivors, moving=on_victim)
        finally:
            self.replicas[victim].kill()
        vanish.update(self._cpu_budget(cpu_before, self.cpu_seconds(*others), trio.current_time() - stopped, on_victim))
        vanish["stations_on_vanished_host"] = on_victim
        vanish["spread"] = await self.owners()
        self.result["vanish"] = vanish
        print(f"[{self.n}] vanish: {vanish}", flush=True)

    async def admitted(self) -> None:
        """Give the balancer's health checks time to put replicas that just started into its pool: in a real
        deployment the survivors were in it long before a replica fails (the checks then only decide how long
        the failed one stays in)."""
        await trio.sleep(self.args.health_interval * (self.args.healthy_after + 1))

    def _profile(self, label: str, *names: str) -> Callable[[], None]:
        """With --profile: py-spy records the named replicas for --profile-seconds from now; returns a
        function that waits for the recordings and writes each one's hottest functions next to it."""
        if self.args.profile is None:
            return lambda: None
        from benchmarks.profile_replica import Recorder, hottest

        self.args.profile.mkdir(parents=True, exist_ok=True)
        recorders = []
        for name in names:
            proc = self.replicas[name].proc
            assert proc is not None
            out = self.args.profile / f"{label}-{self.n}-{name}-{os.getpid()}"
            recorders.append((out, Recorder(proc.pid, out, self.args.profile_seconds, 100)))

        def finish() -> None:
            for out, recorder in recorders:
                recorder.stop()
                collapsed = out.with_suffix(".txt")
                if collapsed.exists():
                    out.with_suffix(".top.txt").write_text(hottest(collapsed, 40))
                    print(f"profile: {out}.top.txt", flush=True)

        return finish

    async def _all_on(self, nodes: set[str]) -> bool:
        counts = await self.owners()
        return sum(c for node, c in counts.items() if node in nodes) >= self.n

    async def run(self) -> dict[str, Any]:
        config = FleetConfig(
            url="",
            stations=self.n,
            profile="idle",
            warmup=0.0,
            duration=0.1,
            prefix=f"fo{self.n}-",
            connect_concurrency=self.args.connect_concurrency,
            connect_timeout=10.0,
            settle_timeout=120.0,
            backoff_base=self.args.backoff,
            backoff_cap=5.0,
            station_ping_s=self.args.station_ping,
            resend_on_reconnect=self.args.resend,
        )
        balancer, port = _start_balancer(list(self.replicas.values()), self.args)
        self.balancer_pid = balancer.pid
        try:
            await self.start("a")
            config = FleetConfig(**{**config.__dict__, "url": f"ws://127.0.0.1:{port}/ocpp"})
            self.fleet = Fleet(config)
            await self.fleet.run(self.scenario)
        except BaseException:
            for replica in self.replicas.values():
                print(f"---- {replica.node_id}\n{replica.log_tail(20)}", file=sys.stderr)
            raise
        finally:
            balancer.kill()
            balancer.wait(10)
            for replica in self.replicas.values():
                replica.kill()
            await self.etcd.aclose()
        return self.result


EVENTS = {"failover": "SIGKILL", "drain": "SIGTERM", "vanish": "SIGSTOP (no FIN)"}
METRICS = (
    "all_owned_s",
    "all_connected_s",
    "all_serving_s",
    "serving_after_first_claim_s",
    "claims_per_s",
    "dialed_to_served_max_s",
)


def summarize_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per fleet size and event: the median and the range (min, max) of each metric over the runs, never the
    best run alone."""
    rows = []
    for n in sorted({r["stations"] for r in runs}):
        for event in EVENTS:
            measured = [r[event] for r in runs if r["stations"] == n and r.get(event, {}).get("all_owned_s")]
            if not measured:
                continue
            row: dict[str, Any] = {"stations": n, "event": event, "runs": len(measured)}
            for metric in METRICS:
                values = [m.get(metric, 0.0) for m in measured]
                row[metric] = {"median": round(statistics.median(values), 2), "min": min(values), "max": max(values)}
            rows.append(row)
    return rows


def _markdown(report: dict[str, Any]) -> str:
    health = report.get("health", {})
    lines = [
        f"# Failover and drain ({report['date']})",
        "",
        f"Machine: {report['machine']}. Lease TTL {report['lease_ttl']} s, drain rate {report['drain_rate']}/s, "
        f"station reconnect backoff {report['backoff']} s base (jittered), station ping {report.get('station_ping')} "
        f"s, {report.get('resend', 0)} queued MeterValues resent after the statuses on reconnect; balancer health "
        f"checks {health}; Postgres fsync on. Code: {report.get('code', '?')}.",
        "",
        "Median (min-max) over the runs:",
        "",
        "| stations | event | runs | all owned | all connected | all serving | serving after first claim | claims/s "
        "| slowest station, dialled to served |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["summary"]:

        def cell(metric: str, unit: str = " s", row: dict[str, Any] = row) -> str:
            m = row[metric]
            return f"{m['median']}{unit} ({m['min']}-{m['max']})"

        lines.append(
            f"| {row['stations']} | {EVENTS[row['event']]} | {row['runs']} | {cell('all_owned_s')} "
            f"| {cell('all_connected_s')} | {cell('all_serving_s')} | {cell('serving_after_first_claim_s')} "
            f"| {cell('claims_per_s', '')} | {cell('dialed_to_served_max_s')} |"
        )
    lines += [
        "",
        "Each run:",
        "",
        "| stations | run | event | moving | first claim | all owned | all connected | all serving "
        "| serving after first claim | claims/s | dialled to served p50 / p99 / max "
        "| attempt to served p50 / p99 / max | CPU ms per station: CSMS + harness | machine busy "
        "| CPU floor (CSMS alone) | replica exit (code) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        for key, label in EVENTS.items():
            e = r.get(key)
            if not e or "all_owned_s" not in e:
                continue
            moving = e.get("stations_on_killed_replica") or e.get("stations_on_drained_replica")
            moving = moving or e.get("stations_on_vanished_host", "")
            exit_info = f"{e['exit_s']} s ({e['exit_code']})" if "exit_s" in e else ""
            cpu = e.get("cpu_ms_per_station")
            budget = f"{cpu['csms']} + {cpu['harness']}" if cpu else ""
            busy = f"{round(100 * e['machine_busy'])} %" if "machine_busy" in e else ""
            if "machine_state" in e:  # steal: the hypervisor's other guests; calibration: a fixed workload's ms
                state = e["machine_state"]
                busy += f" (steal {state['steal_pct']} %, calibration {state['calibration_ms']} ms)"
            floor = f"{e['cpu_floor_s']} s ({e['csms_cpu_floor_s']} s)" if "cpu_floor_s" in e else ""
            lines.append(
                f"| {r['stations']} | {r.get('run', '')} | {label} | {moving} | {e['first_claim_s']} s "
                f"| {e['all_owned_s']} s | {e['all_connected_s']} s | {e['all_serving_s']} s "
                f"| {e['serving_after_first_claim_s']} s | {e['claims_per_s']} | {_triple(e, 'dialed_to_served_s')} "
                f"| {_triple(e, 'attempt_to_served_s')} | {budget} | {busy} | {floor} | {exit_info} |"
            )
    lines += [
        "",
        "Times are from the signal (SIGKILL: all N stations move; SIGTERM: the drained replica's stations, paced",
        "by the drain rate, so never below their number / rate; SIGSTOP: the vanished replica's share).",
        '"owned" = the etcd owner key names a survivor; "connected" = each moving station (counted once) has a',
        'new WebSocket; "serving" = its StatusNotifications and queued messages after reconnecting were answered.',
        '"After first claim" starts when reconnects begin to land on survivors, i.e. without the detection time',
        "(ping timeout, balancer health checks): the part the replicas control.",
        '"Dialled to served": per station, from its successful attempt leaving the generator\'s connect limiter',
        "(real stations have none) to its reconnect messages answered: what the balancer and the CSMS took for it.",
        "\"Attempt to served\" starts after the station's back-off instead, so it adds the generator's queue.",
        '"CPU floor": the CPU every process used over the move (replicas, Postgres, etcd, and the harness: load',
        "generator and balancer) divided by the machine's cores: no scheduling could have served them all sooner",
        "on this machine; in brackets the CSMS's part alone, the floor with the harness on other machines.",
    ]
    return "\n".join(lines) + "\n"


def _triple(event: dict[str, Any], key: str) -> str:
    values = event.get(key) or {}
    return " / ".join(f"{values[q]}" for q, _ in PERCENTILES if q in values) + (" s" if values else "")


def _code_version() -> str:
    """The commit the replicas run (they import csms from the same PYTHONPATH as this process)."""
    import csms

    root = Path(csms.__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True, text=True
        )
    except OSError:
        return str(root)
    return f"{root} {out.stdout.strip()}".strip()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind the with-blocks: stop replicas, etcd and Postgres


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--balancer", metavar="OCPP:API,...", help=argparse.SUPPRESS)
    parser.add_argument("--health", help=argparse.SUPPRESS)
    parser.add_argument("--health-interval", type=float, default=5.0, help="balancer health check period (s)")
    parser.add_argument("--health-timeout", type=float, default=2.0, help="balancer health check timeout (s)")
    parser.add_argument("--unhealthy-after", type=int, default=2, help="failed checks before a replica is out")
    parser.add_argument("--healthy-after", type=int, default=2, help="passed checks before a replica is in")
    parser.add_argument("--station-ping", type=float, default=10.0, help="station-side WebSocket ping (s)")
    parser.add_argument(
        "--events", nargs="+", choices=tuple(EVENTS), default=list(EVENTS), help="what to measure, in this order"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per fleet size (median and range reported)")
    parser.add_argument(
        "--connect-concurrency", type=int, default=200, help="handshakes the load generator has in flight at once"
    )
    parser.add_argument("--resend", type=int, default=2, help="queued MeterValues a station resends on reconnect")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the survivors during the failover")
    parser.add_argument("--profile-seconds", type=float, default=20.0, help="how long --profile records (s)")
    parser.add_argument("--stations", type=int, nargs="+", default=[1000], help="fleet sizes (default 1000)")
    parser.add_argument("--lease-ttl", type=float, default=10.0, help="replica lease TTL (s)")
    parser.add_argument("--drain-rate", type=float, default=200.0, help="stations closed per second on drain")
    parser.add_argument("--backoff", type=float, default=0.5, help="station reconnect backoff base (s)")
    parser.add_argument("--timeout", type=float, default=180.0, help="longest any phase may take (s)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON and md results")
    args = parser.parse_args(argv)
    limit = raise_fd_limit()
    if args.balancer:
        pairs = [tuple(int(p) for p in pair.split(":")) for pair in args.balancer.split(",")]
        interval, timeout, unhealthy, healthy = args.health.split(",")
        health = (float(interval), float(timeout), int(unhealthy), int(healthy))
        trio.run(_serve_balancer, [(ocpp, api) for ocpp, api in pairs], health)
        return
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if limit < 2 * max(args.stations) + 1000:
        parser.error(f"open-file limit {limit} is too low for {max(args.stations)} stations")
    runs = []
    with (
        tempfile.TemporaryDirectory(prefix="csms-bench-failover-") as tmp,
        PostgresServer(fast=False) as postgres,  # durable: fsync and synchronous_commit on; removed on exit
        EtcdServer() as etcd,
    ):
        for n in args.stations:
            for run in range(1, args.runs + 1):
                name = f"failover_{n}_{run}"
                database_url = postgres.create_database(name)
                servers = {"postgres": postgres.pid, "etcd": etcd.proc.pid if etcd.proc else None}
                bench = Bench(n, run, database_url, etcd.client_url, args, Path(tmp), servers)
                try:
                    runs.append(trio.run(bench.run))
                finally:
                    postgres.drop_database(name)  # a run's data goes with it: the next run starts empty
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "code": _code_version(),
        "lease_ttl": args.lease_ttl,
        "drain_rate": args.drain_rate,
        "backoff": args.backoff,
        "station_ping": args.station_ping,
        "resend": args.resend,
        "health": {
            "interval_s": args.health_interval,
            "timeout_s": args.health_timeout,
            "unhealthy_after": args.unhealthy_after,
            "healthy_after": args.healthy_after,
        },
        "summary": summarize_runs(runs),
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"failover-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(_markdown(report))
    print(_markdown(report))
    print(f"written {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
