"""``Database``: the public face of storage for the rest of the CSMS (trio-flavoured)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio
import trio_asyncio

from csms.storage import fencing, listener
from csms.storage.batch import BatchRunner, PendingWrite
from csms.storage.bridge import AsyncioBridge, log_orphaned_error
from csms.storage.coalesce import Coalescer
from csms.storage.errors import DatabaseUnavailable, StorageError
from csms.storage.loop_turns import run_ready_callbacks_per_turn
from csms.storage.migrator import MigrationDir, apply_migrations, load_migrations
from csms.storage.observer import NullObserver, StorageObserver
from csms.storage.pools import close_pool, create_pool, in_transaction, query
from csms.storage.types import Fence, Row, Statement, WriteOp
from csms.storage.work import note_write
from csms.storage.writer import GroupCommitWriter

T = TypeVar("T")
_PING_TIMEOUT = 2.0
_MIGRATION_TIMEOUT = 300.0  # schema changes may rewrite tables; still, never wait forever


class Database:
    """Postgres for trio code. Open with ``async with Database.open(url) as db:``.

    Reads and ad-hoc statements go straight to a pool; hot-path writes go through ``write()`` and the
    group-commit writer. Every call is cancellable with trio deadlines and bounded by ``call_timeout``
    (a frozen server raises DatabaseUnavailable instead of hanging the caller).
    """

    def __init__(
        self,
        bridge: AsyncioBridge,
        url: str,
        pool: Any,
        writer_runner: BatchRunner,
        writer: GroupCommitWriter | None,
        *,
        call_timeout: float,
        observer: StorageObserver | None = None,
    ) -> None:
        self._bridge = bridge
        self._url = url
        self._observer: StorageObserver = observer if observer is not None else NullObserver()
        self._pool = pool
        self._runner = writer_runner
        self._writer = writer
        self._call_timeout = call_timeout
        self._closed = False
        self._migrations_applied = False
        # Concurrent fence records (a reconnect storm claims thousands of stations at once) share statements.
        self._fences: Coalescer[tuple[str, int, int, str], int | None] = Coalescer(
            self._record_fences, key=lambda request: request[0], max_batch=200, parallel=2
        )

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = 10,
        group_commit: bool = True,
        max_batch: int = 256,
        max_wait: float = 0.002,
        queue_size: int | None = None,
        writers: int = 1,
        statement_timeout: float | None = 30.0,
        call_timeout: float = 35.0,
        connect_timeout: float = 5.0,
        close_timeout: float = 10.0,
        observer: StorageObserver | None = None,
    ) -> AsyncIterator[Database]:
        """Open pools (lazily connecting: Postgres may come up later) and run the writer in a nursery.

        ``max_batch``/``max_wait`` bound a group-commit batch; ``queue_size`` (default 4 x max_batch) bounds
        waiting writes (callers wait when full); ``writers`` is the number of concurrent batches.
        On exit, queued writes still commit (within ``close_timeout``) before the pools close.
        """
        obs: StorageObserver = observer if observer is not None else NullObserver()
        body_error: BaseException | None = None
        unwrapped: BaseException | None = None
        try:
            async with cls._open(
                url,
                pool_size=pool_size,
                group_commit=group_commit,
                max_batch=max_batch,
                max_wait=max_wait,
                queue_size=queue_size,
                writers=writers,
                statement_timeout=statement_timeout,
                call_timeout=call_timeout,
                connect_timeout=connect_timeout,
                close_timeout=close_timeout,
                observer=obs,
            ) as db:
                try:
                    yield db
                except BaseException as exc:
                    body_error = exc
                    raise
        except BaseExceptionGroup as group:
            # The nurseries inside wrap an error from the caller's block in groups; hand it back as raised.
            if body_error is None or _leaves(group) != [body_error]:
                raise
            unwrapped = body_error
        if unwrapped is not None:
            raise unwrapped

    @classmethod
    @asynccontextmanager
    async def _open(
        cls,
        url: str,
        *,
        pool_size: int,
        group_commit: bool,
        max_batch: int,
        max_wait: float,
        queue_size: int | None,
        writers: int,
        statement_timeout: float | None,
        call_timeout: float,
        connect_timeout: float,
        close_timeout: float,
        observer: StorageObserver,
    ) -> AsyncIterator[Database]:
        obs = observer
        async with trio_asyncio.open_loop() as loop:
            loop.set_exception_handler(log_orphaned_error)
            run_ready_callbacks_per_turn(loop)
            bridge = AsyncioBridge(loop)
            pool = await bridge.run(
                create_pool,
                url,
                size=pool_size,
                statement_timeout=statement_timeout,
                connect_timeout=connect_timeout,
                name="csms",
            )
            writer_pool = await bridge.run(
                create_pool,
                url,
                size=writers,
                statement_timeout=statement_timeout,
                connect_timeout=connect_timeout,
                name="csms-writer",
            )
            try:
                # The writer has its own connections so readers can never starve the hot write path.
                runner = BatchRunner(writer_pool if group_commit else pool, obs)
                writer = None
                if group_commit:
                    writer = GroupCommitWriter(
                        bridge,
                        runner,
                        max_batch=max_batch,
                        max_wait=max_wait,
                        queue_size=queue_size or 4 * max_batch,
                        batch_timeout=call_timeout,
                        workers=writers,
                    )
                db = cls(bridge, url, pool, runner, writer, call_timeout=call_timeout, observer=obs)
                async with trio.open_nursery() as nursery:
                    if writer is not None:
                        await nursery.start(writer.run)
                    await nursery.start(db._fences.run)
                    try:
                        yield db
                    finally:
                        db._closed = True
                        db._fences.close()
                        if writer is not None:
                            writer.close()
                        nursery.cancel_scope.deadline = trio.current_time() + close_timeout
            finally:
                with trio.CancelScope(shield=True):
                    for p in (writer_pool, pool):
                        await bridge.run(close_pool, p, close_timeout / 2)

    # ------------------------------------------------------------------ reads and ad-hoc statements

    # fetch/fetchrow/fetchval are for statements that leave the session as it was (no SET, advisory locks or
    # LISTEN): their connection goes back to the pool without a reset round trip. Use execute for the rest.

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._call(query, self._pool, "fetch", sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        return await self._call(query, self._pool, "fetchrow", sql, args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._call(query, self._pool, "fetchval", sql, args)

    async def execute(self, sql: str, *args: Any) -> str:
        """Run a statement in its own implicit transaction; returns the status tag (e.g. ``"INSERT 0 1"``).
        Without args, several ;-separated statements may be sent at once."""
        return await self._call(query, self._pool, "execute", sql, args)

    async def transaction(self, fn: WriteOp[T]) -> T:
        """Run ``async def fn(conn)`` (asyncio-flavoured: only await ``conn`` inside) in one transaction:
        one trio<->asyncio crossing for the lot. Not batched: for multi-statement or read-your-writes work."""
        return await self._call(in_transaction, self._pool, fn)

    # ------------------------------------------------------------------ hot-path writes

    async def write(self, op: WriteOp[T], *, fence: Fence | None = None) -> T:
        """Run ``op`` in a write transaction and return its result once COMMITTED.

        With group commit, ``op`` shares a transaction with other callers' ops; if it raises, its batch is
        rolled back, the error is raised here and the others are re-run, so ``op`` must be retry-safe and
        touch nothing but ``conn``. With ``fence``, ``op`` runs only if the fence is the station's current
        one (else FenceRejected), and the station's fence row stays locked until COMMIT. A cancelled caller's
        op is skipped if not yet started, else it may still commit. Inside ``unit_of_work()`` only one
        ``write``/``write_statements`` call is allowed (else SecondWrite): compose the parts instead.
        """
        result: T = await self._submit(PendingWrite(op, fence))
        return result

    async def write_statements(self, statements: Sequence[Statement], *, fence: Fence | None = None) -> list[Any]:
        """Like ``write`` for plain statements, run in the given order; returns once COMMITTED with the rows of
        its ``returns_row`` statements, in order.

        The cheap form for the hot path: the writer sends the same SQL of every write in a batch as one
        pipelined ``executemany``. Statements of different writes in a batch may interleave in any order,
        so they must not depend on each other's effects (a station's own writes never share a batch: it
        waits for each answer). A failing statement fails this write alone, as with ``write``. With no
        statements it still checks ``fence`` (FenceRejected if stale).
        """
        rows: list[Any] = await self._submit(PendingWrite(None, fence, tuple(statements)))
        return rows

    async def _submit(self, pending: PendingWrite) -> Any:
        note_write()
        if self._closed:
            raise DatabaseUnavailable("database is closed")
        if self._writer is not None:
            return await self._writer.submit(pending)
        await self._call(self._runner.run_alone, pending)
        if pending.result is None:
            raise DatabaseUnavailable("write was not run")
        return pending.result.unwrap()

    # ------------------------------------------------------------------ notifications between replicas

    async def listen(
        self,
        channel: str,
        on_message: Callable[[str], None],
        *,
        on_reconnect: Callable[[], None],
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Call ``on_message(payload)`` for every NOTIFY on ``channel`` (from any replica) until cancelled;
        ``on_reconnect()`` after the listening connection was replaced (notifications may have been missed)."""
        await listener.listen(
            self._bridge, self._url, channel, on_message, on_reconnect=on_reconnect, task_status=task_status
        )

    # ------------------------------------------------------------------ fencing

    async def record_fence(self, station_id: str, epoch: int, revision: int, node_id: str) -> int | None:
        """Record a claim ordered by its coordinator key (epoch, revision) if that key is newer than the recorded
        one (or the same key by the same node: an idempotent retry). Returns the station's fence, which the
        claimant's writes must carry; None means a newer claim is recorded: stand down."""
        return await self._fences.submit((station_id, epoch, revision, node_id))

    async def _record_fences(self, requests: list[tuple[str, int, int, str]]) -> list[int | None]:
        """One statement for a batch of fence records (distinct stations), each with its exact outcome."""
        if len(requests) == 1:
            station_id, epoch, revision, node_id = requests[0]
            fence: int | None = await self.fetchval(fencing.RECORD_FENCE, station_id, epoch, revision, node_id)
            return [fence]
        ordered = sorted(requests)  # rows locked in one order by every replica: no deadlock between batches
        rows = await self.fetch(fencing.RECORD_FENCES, *(list(column) for column in zip(*ordered, strict=True)))
        accepted = {row["station_id"]: row["fence"] for row in rows}
        return [accepted.get(request[0]) for request in requests]

    async def fence_epoch(self, domain: str) -> tuple[int, bool]:
        """The epoch of a coordinator domain (issued when first seen) and whether it is the newest epoch."""
        row = await self.fetchrow(fencing.FENCE_EPOCH, domain)
        assert row is not None  # the upsert always returns its row
        return int(row["epoch"]), bool(row["newest"])

    async def current_fence(self, station_id: str) -> int | None:
        return await self.fetchval(fencing.CURRENT_FENCE, station_id)

    # ------------------------------------------------------------------ health and schema

    async def ping(self) -> bool:
        """True if Postgres answers ``SELECT 1`` within 2 s (for /readyz)."""
        with trio.move_on_after(_PING_TIMEOUT):
            try:
                return await self.fetchval("SELECT 1") == 1
            except StorageError:
                return False
        return False

    @property
    def migrations_applied(self) -> bool:
        """True once ``migrate()`` succeeded through this Database (readiness gate)."""
        return self._migrations_applied

    async def migrate(self, sources: Iterable[tuple[str, MigrationDir]] = ()) -> list[tuple[str, int]]:
        """Apply storage's and the given modules' migrations (``[(module, dir_of_sql_files), ...]``),
        safe with many replicas at once. Returns the (module, version) pairs this call applied."""
        if self._closed:
            raise DatabaseUnavailable("database is closed")
        plan = await trio.to_thread.run_sync(load_migrations, list(sources))
        with trio.move_on_after(_MIGRATION_TIMEOUT):
            applied: list[tuple[str, int]] = await self._bridge.run(apply_migrations, self._pool, plan)
            self._migrations_applied = True
            return applied
        raise DatabaseUnavailable(f"migrations did not finish within {_MIGRATION_TIMEOUT}s")

    # ------------------------------------------------------------------ internals

    async def _call(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
        if self._closed:
            raise DatabaseUnavailable("database is closed")
        started = trio.current_time()
        ok = False
        try:
            with trio.CancelScope(deadline=started + self._call_timeout):  # move_on_after, cheaper
                result = await self._bridge.run(fn, *args)
                ok = True
                return result
            raise DatabaseUnavailable(f"no answer from Postgres within {self._call_timeout}s")
        finally:
            self._observer.query_finished(trio.current_time() - started, ok)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found
