"""Schema migrations per module: ``NNNN_description.sql`` files applied in order, once, cluster-wide.

Every replica migrates at start-up; a session advisory lock serialises them, so the first applies and the
others find the work done. Each file runs in its own transaction together with its ledger row, so a failed
migration leaves no trace and is retried by the next start. (Hence no ``CREATE INDEX CONCURRENTLY``.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import asyncpg

from csms.storage.bridge import pooled_connection
from csms.storage.errors import MigrationError

STORAGE_MODULE = "storage"
LOCK_KEY = 0x63736D735F6D6967  # "csms_mig": one cluster-wide advisory lock for all migrators
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

MigrationDir = Traversable | os.PathLike[str] | str
"""A directory of .sql files: ``importlib.resources.files("csms.x.migrations")`` or a filesystem path."""


@dataclass(frozen=True, slots=True)
class Migration:
    module: str
    version: int
    name: str
    sql: str


def load_migrations(sources: Iterable[tuple[str, MigrationDir]]) -> list[Migration]:
    """Read and validate migration files (blocking file I/O: call from a thread). Storage's come first."""
    plan: list[Migration] = []
    seen: set[str] = set()
    for module, where in [(STORAGE_MODULE, files("csms.storage.migrations")), *sources]:
        if module in seen:
            if module == STORAGE_MODULE:
                continue
            raise MigrationError(f"module {module!r} listed twice")
        seen.add(module)
        directory = where if isinstance(where, Traversable) else Path(where)
        if not directory.is_dir():
            raise MigrationError(f"{module}: migration directory {directory} does not exist")
        versions: dict[int, str] = {}
        for entry in sorted(directory.iterdir(), key=lambda e: e.name):
            if not entry.name.endswith(".sql"):
                continue
            match = _FILE_NAME.match(entry.name)
            if match is None:
                raise MigrationError(f"{module}: {entry.name} is not named like 0001_description.sql")
            version = int(match.group(1))
            if version in versions:
                raise MigrationError(f"{module}: version {version} used by {versions[version]} and {entry.name}")
            versions[version] = entry.name
            plan.append(Migration(module, version, match.group(2), entry.read_text(encoding="utf-8")))
    return plan


async def apply_migrations(pool: asyncpg.Pool, plan: list[Migration]) -> list[tuple[str, int]]:
    """asyncio side: apply what the ledger lacks, under the advisory lock. Returns what was applied."""
    applied: list[tuple[str, int]] = []
    async with pooled_connection(pool) as conn:
        await conn.execute("SET statement_timeout = 0")  # migrations may be long; the caller bounds them
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            done: set[tuple[str, int]] = set()
            if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
                rows = await conn.fetch("SELECT module, version FROM schema_migrations")
                done = {(r["module"], r["version"]) for r in rows}
            for m in plan:
                if (m.module, m.version) in done:
                    continue
                try:
                    async with conn.transaction():
                        await conn.execute(m.sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (module, version, name) VALUES ($1, $2, $3)",
                            m.module,
                            m.version,
                            m.name,
                        )
                except asyncpg.PostgresError as exc:
                    raise MigrationError(f"{m.module} {m.version:04d}_{m.name}.sql failed: {exc}") from exc
                applied.append((m.module, m.version))
        except BaseException:
            conn.terminate()  # ends the session, and with it the lock, whatever state it is in
            raise
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    return applied
