"""`python -m devcluster` (deploy/local/run.sh): a local cluster on embedded defaults, supervised until Ctrl-C.

It starts Postgres and etcd (data kept under --data-dir), N plain `csms serve` replicas, and dev balancers in
front of their OCPP and API ports, then prints where to connect. Each replica is an ordinary process with
ordinary settings: the launcher only supervises (it reports every exit and restarts by `--restart` policy).
"""

from __future__ import annotations

import argparse
import secrets
import signal
from pathlib import Path

import trio

from devcluster.balancer import TcpBalancer
from devcluster.etcd import EtcdServer
from devcluster.postgres import PostgresServer
from devcluster.replica import ReplicaProcess
from devcluster.supervisor import Supervisor


def _dev_token(data_dir: Path) -> str:
    path = data_dir / "dev-token"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def replica_env(token: str, database_url: str, etcd_url: str, registration: str = "auto") -> dict[str, str]:
    """The replicas' settings. The internal secret is random per run and independent of the API token: whoever
    holds the (printed) dev token must not be able to call the replica-to-replica endpoints."""
    return {
        "CSMS_DATABASE_URL": database_url,
        "CSMS_ETCD_ENDPOINTS": etcd_url,
        "CSMS_API_TOKENS": f"{token}:admin:dev",  # the audit names its commands token:dev
        "CSMS_INTERNAL_SECRET": secrets.token_urlsafe(32),
        "CSMS_REGISTRATION": registration,
        "CSMS_LOG_FORMAT": "text",
    }


async def _run_replicas(args: argparse.Namespace, data_dir: Path, token: str, database_url: str, etcd_url: str) -> None:
    env = replica_env(token, database_url, etcd_url, args.registration)
    replicas = [ReplicaProcess(f"replica-{i + 1}", env, log_dir=data_dir) for i in range(args.replicas)]
    for replica in replicas:
        replica.start()
    try:
        for replica in replicas:
            await trio.to_thread.run_sync(replica.wait_ready, 60.0)
        health = [f"{r.api_url}/readyz" for r in replicas]
        ocpp = TcpBalancer([("127.0.0.1", r.ocpp_port) for r in replicas], health_urls=health)
        api = TcpBalancer([("127.0.0.1", r.api_port) for r in replicas], health_urls=health, own_metrics=True)
        async with trio.open_nursery() as nursery:
            await nursery.start(ocpp.serve, "127.0.0.1", args.ocpp_port)
            await nursery.start(api.serve, "127.0.0.1", args.api_port)
            print(_banner(args, replicas, ocpp.port, api.port, token, data_dir), flush=True)
            nursery.start_soon(Supervisor(replicas, args.restart, say=lambda text: print(text, flush=True)).run)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            print("stopping ...", flush=True)
            nursery.cancel_scope.cancel()
    finally:
        for replica in replicas:
            replica.terminate()
        for replica in replicas:
            await trio.to_thread.run_sync(replica.stop)


def _banner(
    args: argparse.Namespace, replicas: list[ReplicaProcess], ocpp_port: int, api_port: int, token: str, data_dir: Path
) -> str:
    api = f"http://127.0.0.1:{api_port}"
    if args.registration == "auto":
        stations = "any station id is registered on first connect (--registration auto)"
    else:
        stations = (
            "register a station first (known stations only; --registration auto to skip):\n"
            f"    curl -X PUT -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n"
            f'      -d \'{{"password": "station-secret-1"}}\' {api}/api/v1/stations/CP-1\n'
            f"    then connect as CP-1 with HTTP Basic CP-1:station-secret-1"
        )
    return (
        f"\nCSMS local cluster: {len(replicas)} replicas behind a dev balancer\n"
        f"  stations connect to  ws://127.0.0.1:{ocpp_port}/ocpp/<station id>\n"
        f"  stations             {stations}\n"
        f"  REST API             {api}/api/v1/stations\n"
        f"  console              {api}/ui/   (sign in with the dev token)\n"
        f"  dev token            {token}   (Authorization: Bearer {token})\n"
        f"  metrics per replica  " + ", ".join(f"{r.api_url}/metrics" for r in replicas) + "\n"
        f"                       ({api}/metrics is the balancer's own, not a replica's)\n"
        f"  replica logs         {data_dir}/replica-*.log\n"
        f"  replica exits        reported here; restart policy: {args.restart} (--restart never|on-failure|always)\n"
        "Ctrl-C stops everything."
    )


def _parser() -> argparse.ArgumentParser:
    dev = argparse.ArgumentParser(
        prog="python -m devcluster", description="run a local cluster: Postgres, etcd, replicas and a balancer"
    )
    dev.add_argument("--replicas", type=int, default=3, help="replica processes (default 3)")
    dev.add_argument("--data-dir", default=".csms-dev", help="where Postgres and etcd keep their data")
    dev.add_argument("--ocpp-port", type=int, default=9000, help="balancer port for stations")
    dev.add_argument("--api-port", type=int, default=8080, help="balancer port for the API")
    dev.add_argument(
        "--registration",
        choices=["known", "auto"],
        default="known",
        help="known (default): register stations with passwords through the API; auto: accept any station id",
    )
    dev.add_argument(
        "--restart",
        choices=["never", "on-failure", "always"],
        default="never",
        help="what to do when a replica exits (every exit is reported with its code and last log lines)",
    )
    return dev


def main_dev(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    data_dir = Path(args.data_dir).absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    token = _dev_token(data_dir)
    print(f"starting Postgres and etcd (data in {data_dir}) ...", flush=True)
    postgres = PostgresServer(data_dir / "postgres")
    etcd = EtcdServer(data_dir / "etcd")
    database_url = postgres.start()
    try:
        etcd_url = etcd.start()
        try:
            trio.run(_run_replicas, args, data_dir, token, database_url, etcd_url)
        finally:
            etcd.stop()
    finally:
        postgres.stop()
