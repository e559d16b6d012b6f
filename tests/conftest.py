"""Fixtures shared by every test directory: a real Postgres server per session, a fresh database per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator

import pytest

from csms.storage import Database
from devcluster.nats import NatsServer
from devcluster.postgres import PostgresServer

_TEMPLATE = "csms_test_template"
_db_counter = itertools.count()


# ---------------------------------------------------------------------------------------------- Postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway server for the whole session (fsync off: tests need speed, not crash safety)."""
    with PostgresServer(fast=True) as server:
        server.create_database(_TEMPLATE)
        yield server


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database per test (copied from a tiny template: ~30 ms), dropped afterwards."""
    # A test that stopped or froze the shared server must not break the next one.
    postgres_server.resume()
    postgres_server.start()
    name = f"test_{os.getpid()}_{next(_db_counter)}"
    url = postgres_server.create_database(name, template=_TEMPLATE)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """An open Database on the test's database, with storage's own tables migrated."""
    async with Database.open(database_url, pool_size=4) as database:
        await database.migrate()
        yield database


# ---------------------------------------------------------------------------------------------- NATS


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    """A real nats-server with JetStream per test (starts in ~50 ms)."""
    with NatsServer() as server:
        yield server


# ---------------------------------------------------------------------------------------------- tiers

_TIERS = {"unit": "fast", "integration": "integration", "cluster": "cluster", "deploy": "deploy"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test carries its tier's marker, from its directory: `pytest -m fast` (milliseconds, no servers),
    `-m integration` (real Postgres), `-m cluster` (etcd and replica processes), `-m deploy` (chart, image)."""
    for item in items:
        parts = item.path.parts
        tier = next((_TIERS[p] for p in parts[parts.index("tests") + 1 :][:1] if p in _TIERS), None)
        if tier is not None and item.get_closest_marker(tier) is None:
            item.add_marker(tier)
