"""The one place trio meets asyncio: asyncpg coroutines run on a trio-asyncio loop, called from trio.

Every crossing costs ~30 µs idle and ~300 µs with I/O in flight (measured on the 2-core dev machine), so
callers should cross once per unit of work: a whole transaction or a whole write batch, never per statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import asyncpg
import trio
import trio_asyncio

from csms.storage.errors import DatabaseUnavailable, IntegrityError, QueryError, StorageError, ValueRejected

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# SQLSTATE classes/codes that mean "the server is not there (any more)" rather than "your SQL is wrong".
_UNAVAILABLE_CLASSES = ("08",)  # connection exception
# admin shutdown, crash shutdown, starting up, too many connections, configuration limit exceeded
_UNAVAILABLE_CODES = {"57P01", "57P02", "57P03", "53300", "53400"}
_TRANSIENT_CODES = {"40001", "40P01"}  # serialization failure, deadlock: retrying may succeed
# data exception (also what asyncpg raises when it cannot encode an argument), integrity constraint violation
_ERROR_CLASSES: dict[str, type[QueryError]] = {"22": ValueRejected, "23": IntegrityError}


class AsyncioBridge:
    """Runs asyncio coroutine functions on one trio-asyncio loop from any trio task.

    The loop is held explicitly (not through trio-asyncio's context variable) so tasks started outside the
    ``Database.open`` block, e.g. by the app's nursery, can use the database too. Cancelling the trio
    caller cancels the asyncio task and waits for it to finish.
    """

    def __init__(self, loop: trio_asyncio.TrioEventLoop) -> None:
        self._loop = loop

    async def run(self, fn: Callable[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await self._loop.run_aio_coroutine(fn(*args, **kwargs))
        except trio.Cancelled:
            raise
        except Exception as exc:
            raise translate(exc) from exc


def log_orphaned_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The asyncio loop's exception handler: one log line for an error nobody awaits.

    Every coroutine we run is awaited through the bridge, so what reaches this handler is orphaned: typically a
    pool connect abandoned by a timeout whose future asyncpg fails later ("Future exception was never
    retrieved", ConnectionError 'unexpected connection_lost() call'). trio-asyncio's default handler re-raises
    it into the loop's nursery, which took the whole replica down under overload; the failed connect is
    already reported to whoever was waiting for it.
    """
    exc = context.get("exception")
    log.warning(
        "asyncio error nobody awaited", extra={"detail": context.get("message", ""), "error": repr(exc) if exc else ""}
    )


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DatabaseUnavailable | OSError | asyncio.TimeoutError | TimeoutError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        code = exc.sqlstate or ""
        return code[:2] in _UNAVAILABLE_CLASSES or code in _UNAVAILABLE_CODES
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc)
        return "closed" in text or ("connection" in text and "lost" in text)
    return False


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.PostgresError) and (exc.sqlstate or "") in _TRANSIENT_CODES


def translate(exc: BaseException) -> BaseException:
    """Map asyncpg/OS errors to storage errors; anything else (a domain error raised by an op) is kept."""
    if isinstance(exc, StorageError):
        return exc
    if is_unavailable(exc):
        err: BaseException = DatabaseUnavailable(f"Postgres unavailable: {type(exc).__name__}: {exc}")
    elif isinstance(exc, asyncpg.PostgresError):
        code = exc.sqlstate or ""
        cls = _ERROR_CLASSES.get(code[:2], QueryError)
        err = cls(f"{type(exc).__name__}: {exc}", exc.sqlstate)
    elif isinstance(exc, asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError):
        err = StorageError(f"{type(exc).__name__}: {exc}")
    else:
        return exc
    err.__cause__ = exc
    return err


@contextlib.asynccontextmanager
async def pooled_connection(pool: asyncpg.Pool, *, keeps_session: bool = False) -> AsyncIterator[asyncpg.Connection]:
    """asyncio side: borrow a connection; on cancellation or connection trouble, terminate it.

    A graceful release would send a reset query, which hangs on a frozen server and, because trio waits
    for the cancelled asyncio task to finish, would hang the trio caller too. The server notices the
    dropped client (client_connection_check_interval) and aborts the abandoned statement.

    ``keeps_session=True`` promises the borrower changes no session state (plain reads, write batches in a
    transaction), so the release skips the reset query: one round trip less per read and per batch.
    """
    conn = await pool.acquire()
    if not keeps_session:
        conn.session_may_change()
    try:
        yield conn
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError) or is_unavailable(exc):
            conn.terminate()
        raise
    finally:
        await pool.release(conn)
