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

from benchmarks.simulator import Fleet, FleetConfig, raise_fd_limit
from cluster import EtcdClient
from csms.devtools.balancer import TcpBalancer
from csms.devtools.etcd import EtcdServer
from csms.devtools.postgres import PostgresServer
from csms.devtools.replica import ReplicaProcess

RESULTS = Path(__file__).resolve().parent / "results"
POLL = 0.1


class ReadyBalancer(TcpBalancer):
    """The dev balancer plus what a cloud load balancer does: route only to replicas whose /readyz is 200.

    A draining replica turns not-ready at once, so reconnecting stations stop landing on it (and being
    refused with 503 until they back off) well before it exits. Runs in its own process (`--balancer`), so
    proxying a reconnect storm does not compete with the simulated stations for a core or for file handles.
    """

    def __init__(self, pairs: list[tuple[int, int]]) -> None:
        super().__init__([("127.0.0.1", ocpp) for ocpp, _ in pairs])
        self.pairs = pairs

    async def check_readiness(self) -> None:
        async with httpx.AsyncClient(timeout=0.5) as http:
            while True:
                ready = []
                for ocpp, api in self.pairs:
                    try:
                        if (await http.get(f"http://127.0.0.1:{api}/readyz")).status_code == 200:
                            ready.append(("127.0.0.1", ocpp))
                    except httpx.HTTPError:
                        pass
                self.backends = ready or self.backends
                await trio.sleep(0.1)


async def _serve_balancer(pairs: list[tuple[int, int]]) -> None:
    balancer = ReadyBalancer(pairs)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(balancer.check_readiness)
        port = await nursery.start(balancer.serve, "127.0.0.1", 0)
        print(port, flush=True)


def _start_balancer(replicas: list[ReplicaProcess]) -> tuple[subprocess.Popen[str], int]:
    pairs = ",".join(f"{r.ocpp_port}:{r.api_port}" for r in replicas)
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_failover", "--balancer", pairs],
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

    def __init__(self, n: int, database_url: str, etcd_url: str, args: argparse.Namespace, log_dir: Path) -> None:
        self.n = n
        self.args = args
        self.prefix = f"/bench-failover-{os.getpid()}-{n}/"
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
        self.replicas = {name: ReplicaProcess(f"{name}-{n}", env, log_dir=log_dir) for name in ("a", "b", "c")}
        self.fleet: Fleet | None = None
        self.result: dict[str, Any] = {"stations": n}

    def node(self, name: str) -> str:
        return self.replicas[name].node_id

    async def owners(self) -> dict[str, int]:
        """node id -> stations it owns, from etcd."""
        result = await self.etcd.get(self.prefix + "owners/", prefix=True)
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

    async def measure_move(self, started: float, to: set[str], connects_before: int) -> dict[str, Any]:
        """Seconds from `started` until all N are owned by `to`, and until N new connections were accepted.

        Ownership is followed through one watch on the owners prefix (one range read, then only the changes):
        re-reading all N owner keys ten times a second would itself load etcd and this process (the fleet runs
        here too) in the middle of the storm being measured.
        """
        owned_at = served_at = first_claim = None
        deadline = started + self.args.timeout
        prefix = self.prefix + "owners/"
        snapshot = await self.etcd.get(prefix, prefix=True)
        owner = {kv.key: str(orjson.loads(kv.value).get("node_id")) for kv in snapshot.kvs}
        moved = sum(1 for node in owner.values() if node in to)
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
            while owned_at is None or served_at is None:
                if trio.current_time() > deadline:
                    raise TimeoutError(f"not all {self.n} moved within {self.args.timeout}s: {await self.owners()}")
                now = trio.current_time()
                if first_claim is None and moved > 0:
                    first_claim = now
                if owned_at is None and moved >= self.n:
                    owned_at = now
                if served_at is None and self.connects - connects_before >= self.n:
                    served_at = now
                await trio.sleep(POLL)
            nursery.cancel_scope.cancel()
        assert first_claim is not None
        return {
            "all_owned_s": round(owned_at - started, 2),
            "all_serving_s": round(served_at - started, 2),
            "first_claim_s": round(first_claim - started, 2),
            "claims_per_s": round(self.n / max(owned_at - first_claim, POLL), 1),
            "claims_per_s_from_event": round(self.n / max(owned_at - started, POLL), 1),
        }

    async def scenario(self, connect_report: dict[str, Any]) -> None:
        n = self.n
        self.result["connect"] = {k: connect_report[k] for k in ("connected", "failed", "seconds", "rate_per_s")}
        a, b, c = self.node("a"), self.node("b"), self.node("c")
        await self.wait("all on A", lambda: self._all_on({a}), 60)
        await self.start("b", "c")
        print(f"[{n}] {n} stations on {a}; B and C ready", flush=True)

        # 1. Failover: SIGKILL the replica owning every station.
        before = self.connects
        killed = trio.current_time()
        await trio.to_thread.run_sync(self.replicas["a"].kill)
        failover = await self.measure_move(killed, {b, c}, before)
        failover["spread"] = await self.owners()
        self.result["failover"] = failover
        print(f"[{n}] failover: {failover}", flush=True)

        # 2. Drain: first C's share moves to B, then B (owning all N) drains to the restarted A and C.
        signalled = trio.current_time()
        self.replicas["c"].terminate()
        code_c = await trio.to_thread.run_sync(self.replicas["c"].wait, self.args.timeout)
        await self.wait("all on B", lambda: self._all_on({b}), self.args.timeout)
        self.result["drain_share"] = {"exit_code": code_c, "seconds": round(trio.current_time() - signalled, 2)}
        await self.start("a", "c")
        await trio.sleep(1.0)

        before = self.connects
        signalled = trio.current_time()
        self.replicas["b"].terminate()
        async with trio.open_nursery() as nursery:
            exit_info: dict[str, Any] = {}

            async def wait_exit() -> None:
                exit_info["code"] = await trio.to_thread.run_sync(self.replicas["b"].wait, self.args.timeout)
                exit_info["seconds"] = round(trio.current_time() - signalled, 2)

            nursery.start_soon(wait_exit)
            drain = await self.measure_move(signalled, {a, c}, before)
        drain["exit_code"] = exit_info["code"]
        drain["exit_s"] = exit_info["seconds"]
        drain["drain_rate"] = self.args.drain_rate
        drain["paced_minimum_s"] = round(n / self.args.drain_rate, 2)
        drain["spread"] = await self.owners()
        self.result["drain"] = drain
        print(f"[{n}] drain: {drain}", flush=True)
        assert self.fleet is not None
        self.result["client_errors"] = dict(self.fleet.stats.errors)

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
            connect_concurrency=200,
            connect_timeout=10.0,
            settle_timeout=120.0,
            backoff_base=self.args.backoff,
            backoff_cap=5.0,
        )
        balancer, port = _start_balancer(list(self.replicas.values()))
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


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Failover and drain ({report['date']})",
        "",
        f"Machine: {report['machine']}. Lease TTL {report['lease_ttl']} s, drain rate {report['drain_rate']}/s, "
        f"station reconnect backoff {report['backoff']} s base (jittered).",
        "",
        "| stations | failover: all owned | all serving | claims/s (storm) | claims/s (from kill) "
        "| drain: all owned | all serving | replica exit | exit code | paced minimum |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        f, d = r["failover"], r["drain"]
        lines.append(
            f"| {r['stations']} | {f['all_owned_s']} s | {f['all_serving_s']} s | {f['claims_per_s']} "
            f"| {f['claims_per_s_from_event']} | {d['all_owned_s']} s | {d['all_serving_s']} s | {d['exit_s']} s "
            f"| {d['exit_code']} | {d['paced_minimum_s']} s |"
        )
    lines += [
        "",
        "Failover times are from the SIGKILL; drain times from the SIGTERM of the replica owning every station.",
        '"owned" = every station\'s etcd owner key names a survivor; "serving" = every station has a new',
        "accepted WebSocket. The drain closes stations at the configured rate, so it cannot beat N / rate.",
        "The balancer routes only to replicas whose /readyz is 200 (polled every 0.1 s), like a cloud LB.",
    ]
    return "\n".join(lines) + "\n"


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind the with-blocks: stop replicas, etcd and Postgres


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--balancer", metavar="OCPP:API,...", help=argparse.SUPPRESS)
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
        trio.run(_serve_balancer, [(ocpp, api) for ocpp, api in pairs])
        return
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if limit < 2 * max(args.stations) + 1000:
        parser.error(f"open-file limit {limit} is too low for {max(args.stations)} stations")
    runs = []
    with (
        tempfile.TemporaryDirectory(prefix="csms-bench-failover-") as tmp,
        PostgresServer(fast=True) as postgres,
        EtcdServer() as etcd,
    ):
        for n in args.stations:
            database_url = postgres.create_database(f"failover_{n}")
            bench = Bench(n, database_url, etcd.client_url, args, Path(tmp))
            runs.append(trio.run(bench.run))
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "lease_ttl": args.lease_ttl,
        "drain_rate": args.drain_rate,
        "backoff": args.backoff,
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
