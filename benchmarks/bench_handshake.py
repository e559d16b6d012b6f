"""Handshake cost per security profile, and a reconnect storm of profile 2 stations, on one replica.

    python benchmarks/bench_handshake.py [--connects 300] [--runs 3] [--storm 5000] [--concurrency 100]

One `csms serve` with wss:// (a test PKI made here) and the default PBKDF2 cost (20,000 iterations). Stations
are registered straight into its database (one INSERT), each with a password hash the replica has never
verified, so every profile 1 and 2 connect pays one PBKDF2 like the first connect after a failover does.

- connects/s: `--connects` fresh stations per run connect (handshake, auth, ownership claim, fence) and close,
  `--concurrency` in flight, from a client process; median (and range) of `--runs` runs per profile:
  1 = ws:// + Basic, 2 = wss:// + Basic, 3 = wss:// + a client certificate (no password).
- storm: `--storm` profile 2 stations connect at once and stay connected; the time until the last one is in
  (a station refused with 503 or 429 comes back after 1 s, as firmware does).

The client shares the machine's cores with the replica (and Postgres), so these are lower bounds for a replica
with a core of its own. Writes benchmarks/results/handshake-<UTC time>.json and .md.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio
from trio_websocket import ConnectionRejected, connect_websocket_url

from benchmarks import harness
from benchmarks.simulator import raise_fd_limit
from csms.stations import hash_password
from devcluster.pki import Issued, client_context, issue, make_ca

PASSWORD = "bench-password-0123456789"
STORM_IN_FLIGHT = 250  # handshakes a storm has in flight: within the replica's hashing queue (256 + 2)
MAX_ATTEMPTS = 60  # a station refused with 503/429 (draining, hashing queue full, throttled) retries after 1 s
ITERATIONS = 20_000


def stored_hash() -> str:
    value: Any = hash_password(PASSWORD, ITERATIONS)
    if hasattr(value, "__await__"):  # the hashing may be async (off the event loop) in newer versions

        async def wait() -> str:
            return str(await value)

        return trio.run(wait)
    return str(value)


def register(url: str, prefix: str, count: int, profile: int, password_hash: str | None) -> None:
    value = "NULL" if password_hash is None else f"'{password_hash}'"
    sql = (
        f"INSERT INTO stations (id, password_hash, security_profile) SELECT '{prefix}' || g, {value}, {profile}"
        f" FROM generate_series(1, {count}) AS g"
    )
    subprocess.run(["psql", url, "-q", "-c", sql], check=True)


# ------------------------------------------------------------------------------------------------ client


async def client(args: argparse.Namespace) -> dict[str, Any]:
    """Connect `count` stations, `concurrency` handshakes in flight; hold them all (a storm) or close each."""
    directory = Path(args.pki)
    server_ca = Issued.load(directory, "server-ca")
    station_ca = Issued.load(directory, "station-ca")
    shared = client_context(server_ca)
    contexts = [
        client_context(server_ca, issue(station_ca, directory / "stations", f"{args.prefix}{i}"))
        if args.profile == 3
        else shared
        for i in range(1, args.count + 1)
    ]
    limiter = trio.CapacityLimiter(args.concurrency)
    outcome = {"connected": 0, "failed": 0, "retried": 0}
    errors: dict[str, str] = {}
    all_in, release = trio.Event(), trio.Event()

    def settled(key: str) -> None:
        outcome[key] += 1
        if outcome["connected"] + outcome["failed"] == args.count:
            all_in.set()

    async def one(index: int) -> None:
        station_id = f"{args.prefix}{index + 1}"
        headers = []
        if args.profile in (1, 2):
            auth = base64.b64encode(f"{station_id}:{PASSWORD}".encode()).decode()
            headers.append((b"Authorization", f"Basic {auth}".encode()))
        for _attempt in range(MAX_ATTEMPTS):
            try:
                # A nursery per station: trio-websocket raises a refusal in the connection's nursery.
                async with trio.open_nursery() as own:
                    async with limiter:
                        with trio.fail_after(120):
                            await connect_websocket_url(
                                own,
                                f"{args.url}/{station_id}",
                                ssl_context=contexts[index] if args.url.startswith("wss") else None,
                                subprotocols=["ocpp1.6"],
                                extra_headers=headers,
                            )
                    settled("connected")
                    if args.hold:
                        await release.wait()
                    own.cancel_scope.cancel()
                return
            except Exception as exc:
                status = _rejected_status(exc)
                if status not in (429, 503):
                    errors.setdefault(str(status or type(exc).__name__), repr(exc)[:200])
                    settled("failed")
                    return
                outcome["retried"] += 1  # as a station does: back off, come again
            await trio.sleep(1.0)
        settled("failed")

    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        for index in range(args.count):
            nursery.start_soon(one, index)
        await all_in.wait()
        seconds = time.monotonic() - started
        release.set()
        nursery.cancel_scope.cancel()  # the storm is measured; drop the connections at once
    return {**outcome, "seconds": round(seconds, 3), "errors": errors}


def _rejected_status(exc: BaseException) -> int | None:
    """The HTTP status of a refusal, also inside the exception group a nursery wraps it in."""
    if isinstance(exc, ConnectionRejected):
        return int(exc.status_code)
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            status = _rejected_status(inner)
            if status is not None:
                return status
    return None


def run_client(url: str, pki: Path, prefix: str, count: int, profile: int, concurrency: int, hold: bool) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--client",
        f"--url={url}",
        f"--pki={pki}",
        f"--prefix={prefix}",
        f"--count={count}",
        f"--profile={profile}",
        f"--concurrency={concurrency}",
        *(["--hold"] if hold else []),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"client failed:\n{out.stderr[-8000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# ------------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connects", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--storm", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--pki", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hold", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_fd_limit()
    if args.client:
        print(json.dumps(trio.run(client, args)))
        return

    password_hash = stored_hash()
    rates: dict[int, list[float]] = {1: [], 2: [], 3: []}
    with tempfile.TemporaryDirectory() as tmp, harness.postgres() as pg:
        pki = Path(tmp) / "pki"
        server_ca, station_ca = make_ca(pki, "server-ca"), make_ca(pki, "station-ca")
        server = issue(server_ca, pki, "csms.bench", server=True, stem="server")
        url = pg.create_database("bench_handshake")
        settings = {
            "tls_cert_file": str(server.cert_file),
            "tls_key_file": str(server.key_file),
            "tls_client_ca_file": str(station_ca.cert_file),
            "registration": "known",
            # Every simulated station comes from 127.0.0.1: a per-source failure budget would count the storm's
            # in-flight checks against one address (real stations have their own; behind NAT operators set 0).
            "auth_source_failures_per_minute": "0",
        }
        plain = harness.replica(url, Path(tmp), node_id="bench-plain", auth_source_failures_per_minute="0")
        with plain as node_ws:
            ws_url = node_ws.ocpp_url
            for run in range(args.runs):
                prefix = f"p1r{run}-"
                register(url, prefix, args.connects, 1, password_hash)
                result = run_client(ws_url, pki, prefix, args.connects, 1, args.concurrency, False)
                rates[1].append(result["connected"] / result["seconds"])
                print(f"profile 1 run {run}: {result}", flush=True)
        with harness.replica(url, Path(tmp), node_id="bench-tls", **settings) as node:
            wss_url = node.ocpp_url.replace("ws://", "wss://")
            for run in range(args.runs):
                for profile in (2, 3):
                    prefix = f"p{profile}r{run}-"
                    register(url, prefix, args.connects, profile, password_hash if profile == 2 else None)
                    result = run_client(wss_url, pki, prefix, args.connects, profile, args.concurrency, False)
                    rates[profile].append(result["connected"] / result["seconds"])
                    print(f"profile {profile} run {run}: {result}", flush=True)
            storm: dict[str, Any] = {}
            if args.storm:
                register(url, "storm-", args.storm, 2, password_hash)
                meter = harness.CpuMeter({"server": node.proc.pid if node.proc else 0})
                meter.start()
                storm = run_client(wss_url, pki, "storm-", args.storm, 2, STORM_IN_FLIGHT, True)
                storm["cpu_pct"] = meter.stop()
                print(f"storm: {storm}", flush=True)
    data = {
        "machine": harness.machine(),
        "connects_per_run": args.connects,
        "runs": args.runs,
        "concurrency": args.concurrency,
        "pbkdf2_iterations": ITERATIONS,
        "connects_per_s": {str(p): [round(r, 1) for r in v] for p, v in rates.items()},
        "median_connects_per_s": {str(p): round(statistics.median(v), 1) for p, v in rates.items() if v},
        "storm": {"stations": args.storm, **storm},
    }
    rows = [[p, data["median_connects_per_s"][str(p)], data["connects_per_s"][str(p)]] for p in (1, 2, 3)]
    markdown = (
        "# Handshake cost per security profile (one replica)\n\n"
        + harness.table(["profile", "median connects/s", "runs"], rows)
        + f"\nReconnect storm: {args.storm} profile 2 stations connected in {storm.get('seconds')} s"
        f" ({storm.get('connected')} connected, {storm.get('failed')} failed; server CPU {storm.get('cpu_pct')}).\n"
    )
    json_path, md_path = harness.write_results("handshake", data, markdown)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
