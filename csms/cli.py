"""`csms serve` runs one replica; `csms migrate` applies the schema and exits.

The local dev cluster is not part of the shipped package: `python -m devcluster` (deploy/local/run.sh).
"""

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
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
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


if __name__ == "__main__":
    main()
