"""Failure behaviour against a real server that we stop, restart and freeze: callers get DatabaseUnavailable
(never a hang), the pools reconnect by themselves, and trio cancellation reaches Postgres."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
import trio

from csms.storage import Connection, Database, DatabaseUnavailable, WriteOp
from devcluster.postgres import PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture
def private_server() -> Iterator[PostgresServer]:
    """A server of our own: these tests stop and freeze it, which must not disturb the shared one."""
    with PostgresServer(fast=True) as server:
        yield server


def insert(n: int) -> WriteOp[None]:
    async def op(conn: Connection) -> None:
        await conn.execute("INSERT INTO items VALUES ($1)", n)

    return op


async def eventually_write(db: Database, n: int, within: float) -> int:
    """Retry a write until it succeeds; returns how many attempts failed with DatabaseUnavailable."""
    failures = 0
    with trio.fail_after(within):
        while True:
            try:
                await db.write(insert(n))
                return failures
            except DatabaseUnavailable:
                failures += 1
                await trio.sleep(0.05)


async def test_writes_fail_while_postgres_is_down_and_succeed_after_restart(
    private_server: PostgresServer,
) -> None:
    async with Database.open(private_server.url(), pool_size=3, connect_timeout=2.0) as db:
        await db.execute("CREATE TABLE items (n int PRIMARY KEY)")
        await db.write(insert(1))

        await trio.to_thread.run_sync(private_server.stop)
        with trio.fail_after(10):
            with pytest.raises(DatabaseUnavailable):
                await db.write(insert(2))
            with pytest.raises(DatabaseUnavailable):
                await db.fetchval("SELECT 1")
            assert not await db.ping()

        await trio.to_thread.run_sync(private_server.start)
        await eventually_write(db, 3, within=10)
        assert await db.ping()
        assert [r["n"] for r in await db.fetch("SELECT n FROM items ORDER BY n")] == [1, 3]

        # A restart under an idle, warm pool: stale connections are replaced without the caller retrying
        # more than a few times.
        await trio.to_thread.run_sync(private_server.restart)
        assert await eventually_write(db, 4, within=10) <= 3
        assert await db.fetchval("SELECT count(*) FROM items") == 3


async def test_a_frozen_server_times_out_instead_of_hanging(private_server: PostgresServer) -> None:
    async with Database.open(private_server.url(), pool_size=2, call_timeout=1.0, connect_timeout=1.0) as db:
        await db.execute("CREATE TABLE items (n int PRIMARY KEY)")
        await db.write(insert(1))
        private_server.pause()
        try:
            with trio.fail_after(5):
                with pytest.raises(DatabaseUnavailable):
                    await db.write(insert(2))
                with pytest.raises(DatabaseUnavailable):
                    await db.fetchval("SELECT 1")
                assert not await db.ping()
        finally:
            private_server.resume()
        await eventually_write(db, 3, within=10)
        assert await db.fetchval("SELECT count(*) FROM items WHERE n IN (1, 3)") == 2


async def test_trio_cancellation_cancels_the_query_in_postgres(db: Database) -> None:
    started = trio.current_time()
    with trio.move_on_after(0.2) as scope:
        await db.fetchval("SELECT pg_sleep(30)")
    assert scope.cancelled_caught
    assert trio.current_time() - started < 1.0

    sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'"
    for _ in range(50):  # the backend notices its client is gone (client_connection_check_interval)
        if await db.fetchval(sleeping) == 0:
            break
        await trio.sleep(0.1)
    else:
        pytest.fail("the cancelled query is still running in Postgres")
    assert await db.fetchval("SELECT 41 + 1") == 42


async def test_cancelled_writers_are_released_and_unstarted_ops_skipped(database_url: str) -> None:
    async with Database.open(database_url, max_batch=1) as db:
        await db.execute("CREATE TABLE items (n int PRIMARY KEY)")

        async def slow(conn: Connection) -> None:
            await conn.execute("SELECT pg_sleep(1)")
            await conn.execute("INSERT INTO items VALUES (1)")

        running = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(1)' AND state = 'active'"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.write, slow)
            with trio.fail_after(5):  # the slow op now occupies the (only) writer
                while not await db.fetchval(running):
                    await trio.sleep(0.01)
            started = trio.current_time()
            with trio.move_on_after(0.1) as scope:
                await db.write(insert(2))  # queued behind it, then given up
            assert scope.cancelled_caught
            assert trio.current_time() - started < 0.3
        await db.write(insert(3))
        assert [r["n"] for r in await db.fetch("SELECT n FROM items ORDER BY n")] == [1, 3]


async def test_closed_database_refuses_calls(database_url: str) -> None:
    async with Database.open(database_url) as db:
        pass
    with pytest.raises(DatabaseUnavailable):
        await db.write(insert(1))
    with pytest.raises(DatabaseUnavailable):
        await db.fetchval("SELECT 1")


async def test_errors_from_the_block_come_out_unwrapped(database_url: str) -> None:
    with pytest.raises(KeyError):
        async with Database.open(database_url) as db:
            await db.fetchval("SELECT 1")
            raise KeyError("not an exception group")


async def test_an_orphaned_asyncio_error_is_logged_not_fatal(private_server: PostgresServer) -> None:
    """A pool connect abandoned under overload leaves a failed future nobody awaits; asyncio hands it to the
    loop's exception handler when it is collected. trio-asyncio's default handler re-raised it into the loop's
    nursery and stopped the replica (seen at 5,000 stations on a loaded machine)."""

    async def orphan_a_failed_future(conn: Connection) -> None:
        future = asyncio.get_running_loop().create_future()
        future.set_exception(ConnectionError("unexpected connection_lost() call"))
        del future
        gc.collect()  # Future.__del__: "Future exception was never retrieved" -> the loop's exception handler

    async with Database.open(private_server.url(), pool_size=2) as db:
        await db.transaction(orphan_a_failed_future)
        await trio.sleep(0.1)  # where the default handler's re-raise would land
        assert await db.fetchval("SELECT 1") == 1
