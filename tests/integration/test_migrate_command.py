"""`csms migrate`: applies every module's migrations to an empty database and exits; a second run is a no-op."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg
import trio_asyncio

from csms.app import MIGRATIONS


def _migrate(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CSMS_DATABASE_URL": database_url, "CSMS_LOG_FORMAT": "text"}
    return subprocess.run(
        [sys.executable, "-m", "csms", "migrate"], env=env, capture_output=True, text=True, timeout=120
    )


async def _ledger(database_url: str) -> set[str]:
    async def fetch() -> set[str]:
        conn = await asyncpg.connect(database_url)
        try:
            return {row["module"] for row in await conn.fetch("SELECT module FROM schema_migrations")}
        finally:
            await conn.close()

    async with trio_asyncio.open_loop():
        result: set[str] = await trio_asyncio.aio_as_trio(fetch)()
        return result


async def test_migrate_applies_every_module_then_finds_nothing_to_do(database_url: str) -> None:
    first = _migrate(database_url)
    assert first.returncode == 0, first.stderr
    assert "csms migrate: applied storage 0001" in first.stdout
    assert await _ledger(database_url) == {"storage", *(module for module, _ in MIGRATIONS)}
    second = _migrate(database_url)
    assert second.returncode == 0, second.stderr
    assert "nothing (schema up to date)" in second.stdout


def test_migrate_without_a_database_says_so_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CSMS_DATABASE_URL"}
    out = subprocess.run([sys.executable, "-m", "csms", "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [
        "csms: configuration error: CSMS_DATABASE_URL is not set (or `bash deploy/local/run.sh` for a local cluster)"
    ]
