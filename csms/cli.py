"""`csms serve` runs one replica; `csms migrate` applies the schema and exits; `csms dev` runs a local cluster."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

from csms import config as settings


def _version() -> str:
    try:
        return version("csms")
    except PackageNotFoundError:
        return "0.0.0+local"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csms", description="OCPP charging station management system")
    parser.add_argument("--version", action="version", version=f"csms {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run one replica (every setting also reads CSMS_<NAME>)")
    settings.add_arguments(serve)
    migrate = commands.add_parser(
        "migrate", help="apply the schema migrations and exit (reads the same settings as serve; needs the database)"
    )
    settings.add_arguments(migrate)
    dev = commands.add_parser("dev", help="run a local cluster: Postgres, etcd, replicas and a balancer")
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
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command in ("serve", "migrate"):
        try:
            config = settings.load(args)
            settings.require_database(config)
        except settings.ConfigError as exc:
            sys.exit(f"csms: configuration error: {exc}")
        if args.command == "migrate":
            from csms.migrate import main_migrate

            main_migrate(config)
            return
        from csms.app import main_serve

        main_serve(config)
    elif args.command == "dev":
        from csms.devtools.launcher import main_dev

        main_dev(args)


if __name__ == "__main__":
    main()
