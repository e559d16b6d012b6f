"""Hold Postgres locks from a separate psql session: real contention for tests, released on exit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from subprocess import PIPE

import trio

from csms.storage import Database
from devcluster.postgres import find_bindir


@asynccontextmanager
async def held_in_transaction(database_url: str, statement: str) -> AsyncIterator[None]:
    """Run ``statement`` (a lock) in an open transaction of its own session; COMMIT when the block ends."""
    command = [str(find_bindir() / "psql"), "-X", "-q", "-A", "-t", database_url]
    process = await trio.lowlevel.open_process(command, stdin=PIPE, stdout=PIPE)
    assert process.stdin is not None and process.stdout is not None
    await process.stdin.send_all(f"BEGIN;\n{statement};\nSELECT 'locked';\n".encode())
    with trio.fail_after(10):
        assert b"locked" in await process.stdout.receive_some()
    try:
        yield
    finally:
        with trio.CancelScope(shield=True), trio.fail_after(10):
            await process.stdin.send_all(b"COMMIT;\n")
            await process.stdin.aclose()
            await process.wait()


async def wait_for_lock_waiters(database_url: str, relation: str, count: int = 1) -> None:
    """Until ``count`` sessions wait for a lock on ``relation``: a handshake is provably stuck there."""
    async with Database.open(database_url, pool_size=1) as db:
        with trio.fail_after(10):
            while (
                await db.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::regclass", relation
                )
                < count
            ):
                await trio.sleep(0.02)
