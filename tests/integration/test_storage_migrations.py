"""Migrations: ordered per module, applied once, safe with several replicas starting together."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from csms.storage import Database, MigrationError

pytestmark = pytest.mark.integration


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


async def test_applies_in_order_once_and_records_them(db: Database, tmp_path: Path) -> None:
    things = write_migrations(
        tmp_path / "things",
        {
            "0002_add_colour.sql": "ALTER TABLE things ADD COLUMN colour text NOT NULL DEFAULT 'red';",
            "0001_create.sql": "CREATE TABLE things (id int PRIMARY KEY);",
            "README.md": "not a migration",
        },
    )
    assert await db.migrate([("things", things)]) == [("things", 1), ("things", 2)]
    assert db.migrations_applied
    assert await db.migrate([("things", things)]) == []
    rows = await db.fetch("SELECT module, version, name FROM schema_migrations ORDER BY module, version")
    assert [tuple(r.values()) for r in rows] == [
        ("storage", 1, "schema_migrations"),
        ("storage", 2, "station_fences"),
        ("storage", 3, "fence_epochs"),
        ("storage", 4, "change_feed"),
        ("things", 1, "create"),
        ("things", 2, "add_colour"),
    ]
    (things / "0003_more.sql").write_text("INSERT INTO things VALUES (1);")
    assert await db.migrate([("things", things)]) == [("things", 3)]
    assert await db.fetchval("SELECT colour FROM things WHERE id = 1") == "red"


async def test_concurrent_migrators_apply_each_migration_exactly_once(database_url: str, tmp_path: Path) -> None:
    counted = write_migrations(
        tmp_path / "counted",
        {
            "0001_create.sql": "CREATE TABLE runs (n int); SELECT pg_sleep(0.2);",
            "0002_count.sql": "INSERT INTO runs VALUES (1);",
        },
    )
    applied: list[list[tuple[str, int]]] = []

    async def replica() -> None:
        async with Database.open(database_url, pool_size=2) as db:
            applied.append(await db.migrate([("counted", counted)]))
            assert db.migrations_applied

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(replica)

    everything = [("storage", 1), ("storage", 2), ("storage", 3), ("storage", 4), ("counted", 1), ("counted", 2)]
    assert sorted(applied, key=len) == [[], [], [], everything]
    async with Database.open(database_url, pool_size=1) as db:
        assert await db.fetchval("SELECT count(*) FROM runs") == 1


async def test_bad_sources_and_failing_migrations_are_reported(db: Database, tmp_path: Path) -> None:
    bad_name = write_migrations(tmp_path / "bad_name", {"1_create.sql": "SELECT 1;"})
    with pytest.raises(MigrationError, match="0001_description"):
        await db.migrate([("bad", bad_name)])
    duplicate = write_migrations(tmp_path / "dup", {"0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 1;"})
    with pytest.raises(MigrationError, match="version 1"):
        await db.migrate([("dup", duplicate)])

    broken = write_migrations(
        tmp_path / "broken",
        {
            "0001_ok.sql": "CREATE TABLE ok (id int);",
            "0002_broken.sql": "CREATE TABLE half (id int); SELEC 1;",
        },
    )
    with pytest.raises(MigrationError, match="0002_broken"):
        await db.migrate([("broken", broken)])
    assert await db.fetchval("SELECT to_regclass('half')") is None  # rolled back as a whole
    assert await db.fetchval("SELECT max(version) FROM schema_migrations WHERE module = 'broken'") == 1
    (broken / "0002_broken.sql").write_text("CREATE TABLE half (id int);")
    assert await db.migrate([("broken", broken)]) == [("broken", 2)]
