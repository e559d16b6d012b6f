"""asyncio-side helpers: pool creation and one-shot queries (each runs in a single bridge crossing)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import orjson

from csms.storage.bridge import pooled_connection
from csms.storage.types import Connection, WriteOp


class TrackedConnection(asyncpg.Connection):
    """A connection that knows whether a borrower may have changed its session state (SET, advisory locks,
    LISTEN), so the pool sends the reset query (a round trip) only after those borrowers, not after reads."""

    __slots__ = ("session_changed",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_changed = False

    def session_may_change(self) -> None:
        self.session_changed = True


async def _reset_session(conn: TrackedConnection) -> None:
    """The pool's reset hook (after asyncpg has rolled back any open transaction)."""
    if conn.session_changed:
        query = conn.get_reset_query()
        if query:
            await conn.execute(query)
        conn.session_changed = False


async def _init_connection(conn: asyncpg.Connection) -> None:
    """json/jsonb as plain Python values via orjson (fast, and no json.dumps at every call site)."""
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
            format="text",
        )


async def create_pool(
    url: str, *, size: int, statement_timeout: float | None, connect_timeout: float, name: str
) -> asyncpg.Pool:
    """A lazily-connecting pool (min_size=0): opening never fails because Postgres is not up yet;
    connections are made on demand and replaced transparently after a server restart."""
    settings = {
        "application_name": name,
        # A backend whose client vanished (terminated on cancellation) notices within a second.
        "client_connection_check_interval": "1000",
    }
    if statement_timeout is not None:
        settings["statement_timeout"] = str(int(statement_timeout * 1000))
    return await asyncpg.create_pool(
        url,
        min_size=0,
        max_size=size,
        timeout=connect_timeout,
        server_settings=settings,
        init=_init_connection,
        reset=_reset_session,
        connection_class=TrackedConnection,
        # No idle-connection timers: while any asyncio timer is pending, trio-asyncio's loop arms a trio
        # deadline for every callback it runs, which showed up as deadline-heap churn in profiles. The pool
        # is small and a dead connection is replaced when next used.
        max_inactive_connection_lifetime=0,
    )


async def close_pool(pool: asyncpg.Pool, grace: float) -> None:
    """Close gracefully within ``grace`` seconds, else drop the connections."""
    try:
        await asyncio.wait_for(pool.close(), grace)
    except (Exception, asyncio.CancelledError):
        with contextlib.suppress(Exception):
            pool.terminate()


_READS = frozenset({"fetch", "fetchrow", "fetchval"})
_DML = ("INSERT", "UPDATE", "DELETE")


def keeps_session(method: str, sql: str, args: tuple[Any, ...]) -> bool:
    """Reads, and one parameterised DML statement (the extended protocol runs exactly one), leave the
    session as it was; anything else (SET, advisory locks, LISTEN, several statements) may not."""
    return method in _READS or (bool(args) and sql.lstrip()[:6].upper().startswith(_DML))


async def query(pool: asyncpg.Pool, method: str, sql: str, args: tuple[Any, ...]) -> Any:
    async with pooled_connection(pool, keeps_session=keeps_session(method, sql, args)) as conn:
        return await getattr(conn, method)(sql, *args)


async def in_transaction(pool: asyncpg.Pool, fn: WriteOp[Any]) -> Any:
    async with pooled_connection(pool) as conn, conn.transaction():
        connection: Connection = conn
        return await fn(connection)
