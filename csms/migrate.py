"""`csms migrate`: apply every module's schema migrations, then exit.

The chart's optional pre-upgrade Job runs it, so a migration that fails stops `helm upgrade` before any replica
rolls; replicas still migrate at start-up (under the same advisory lock) and then find nothing to do.
"""

from __future__ import annotations

import logging
import sys

import trio

from csms.app import MIGRATIONS
from csms.config import Config
from csms.observability import configure_logging
from csms.storage import Database, StorageError

log = logging.getLogger("csms.migrate")


async def migrate(config: Config) -> list[tuple[str, int]]:
    """Apply what the ledger lacks; returns the (module, version) pairs applied by this run."""
    async with Database.open(config.database_url, pool_size=1, group_commit=False) as db:
        return await db.migrate(MIGRATIONS)


def main_migrate(config: Config) -> None:
    configure_logging(config.log_level, config.log_format, config.node_id)
    try:
        applied = trio.run(migrate, config)
    except StorageError as exc:
        log.error("migration failed: %s", exc)
        sys.exit(f"csms migrate: {exc}")
    names = ", ".join(f"{module} {version:04d}" for module, version in applied) or "nothing (schema up to date)"
    log.info("migrations applied: %s", names, extra={"applied": len(applied)})
    print(f"csms migrate: applied {names}", flush=True)
