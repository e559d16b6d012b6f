"""asyncio side of the group-commit writer: run a batch of writes in one transaction.

Writes are either ops (``async def op(conn)``, run one after another) or plain statements, which are merged:
the same SQL from every write of the batch goes to Postgres as one pipelined ``executemany`` (or, for a bulk
statement, as one execution over all the rows), so a batch costs a round trip per distinct statement instead of
one per write. A write's own statements keep their order.
A statement marked ``returns_row`` yields one row per write (merged as one ``fetchmany``): the write's result
is its rows, so a hot-path write that needs an answer (a TransactionEvent's transaction) stays mergeable.

A failing write must not sink its neighbours: the batch is rolled back, the failing op's caller gets the
error, and the rest run again as a (smaller) batch. A failing merged statement names only its group of
writers: in the next attempt each of those runs in its own savepoint inside the same transaction as the rest,
so the culprit gets its own error and everyone else commits in that one transaction. Either way the
neighbours of a bad write pay one extra attempt, never a transaction each (one commit, an fsync, per write).
When the culprit is unknown (COMMIT itself failed, a deadlock or serialization failure) or a batch keeps
failing, each write runs alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import outcome
import trio

from csms.storage.bridge import is_transient, is_unavailable, pooled_connection, translate
from csms.storage.errors import FenceRejected
from csms.storage.fencing import lock_current_fences
from csms.storage.observer import StorageObserver
from csms.storage.types import Fence, Statement, WriteOp
from csms.storage.work import one_row_each, run_statements


@dataclass(eq=False, slots=True)
class PendingWrite:
    """One caller's write waiting for its batch: an ``op`` or ``statements`` (then its result is None).
    ``result`` is set on the asyncio side, ``done`` on trio's."""

    op: WriteOp[Any] | None
    fence: Fence | None
    statements: tuple[Statement, ...] | None = None
    done: trio.Event = field(default_factory=trio.Event)
    result: outcome.Outcome[Any] | None = None
    abandoned: bool = False  # the caller was cancelled before the op ran: skip it

    @property
    def settled(self) -> bool:
        return self.result is not None

    def succeed(self, value: Any) -> None:
        if self.result is None:
            self.result = outcome.Value(value)

    def fail(self, error: BaseException) -> bool:
        if self.result is None:
            self.result = outcome.Error(error)
            return True
        return False

    async def run_on(self, conn: asyncpg.Connection) -> Any:
        """Run this write by itself on ``conn`` (statements one by one, in order)."""
        if self.statements is None:
            assert self.op is not None
            return await self.op(conn)
        return await run_statements(conn, self.statements)


@dataclass(eq=False, slots=True)
class StatementGroup:
    """One SQL text with the argument rows of every write in the batch that uses it, in batch order."""

    sql: str
    bulk: bool = False
    returns_row: bool = False
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    writers: list[PendingWrite] = field(default_factory=list)
    owners: list[PendingWrite] = field(default_factory=list)  # the writer of each row

    async def run(self, conn: asyncpg.Connection) -> list[tuple[PendingWrite, Any]]:
        """Run the group; for a ``returns_row`` statement, each writer with the row its arguments yielded."""
        if self.returns_row:
            records = await conn.fetchmany(self.sql, self.rows)
            return list(zip(self.owners, one_row_each(records, len(self.rows), self.sql), strict=True))
        if self.bulk:
            await conn.execute(self.sql, self.rows)
        elif len(self.rows) == 1:
            await conn.execute(self.sql, *self.rows[0])
        else:
            await conn.executemany(self.sql, self.rows)
        return []


def plan_statements(writes: Iterable[PendingWrite]) -> list[StatementGroup]:
    """Groups to run in list order. A statement joins the first group of its SQL that does not run before the
    group of its write's previous statement (else it opens a new group), so each write's statements still run
    in the order it gave them, and a batch needs as few round trips as that allows. An ``independent``
    statement joins the first group of its SQL wherever it is and leaves the order of the rest as it was."""
    groups: list[StatementGroup] = []
    by_sql: dict[tuple[str, bool], list[int]] = {}
    for p in writes:
        floor = 0
        for statement in p.statements or ():
            indexes = by_sql.setdefault((statement.sql, statement.returns_row), [])
            anywhere = statement.independent and not statement.returns_row
            index = next((i for i in indexes if i >= (0 if anywhere else floor)), -1)
            if index < 0:
                index = len(groups)
                groups.append(StatementGroup(statement.sql, bulk=statement.bulk, returns_row=statement.returns_row))
                indexes.append(index)
            group = groups[index]
            group.rows.append(statement.args)
            group.owners.append(p)
            if not group.writers or group.writers[-1] is not p:
                group.writers.append(p)
            if not anywhere:
                floor = index
    return groups


class BatchRunner:
    """Runs batches on the writer's pool (asyncio-flavoured; called through the bridge)."""

    def __init__(
        self, pool: asyncpg.Pool, observer: StorageObserver, *, max_rounds: int = 4, solo_attempts: int = 3
    ) -> None:
        self._pool = pool
        self._observer = observer
        self._max_rounds = max_rounds
        self._solo_attempts = solo_attempts

    async def run(self, items: list[PendingWrite]) -> None:
        """Settle every item: committed value, its own error, FenceRejected or DatabaseUnavailable."""
        pending = [p for p in items if not p.abandoned]
        isolate: set[int] = set()
        alone: list[PendingWrite] = []
        for _ in range(self._max_rounds):
            if not pending:
                break
            pending, isolate, solo = await self._attempt(pending, isolate)
            alone.extend(solo)
        for p in [*alone, *pending]:
            await self.run_alone(p)

    async def run_alone(self, p: PendingWrite) -> None:
        """One write in its own transaction (group commit off, or batch fallback); retries transient errors."""
        for attempt in range(self._solo_attempts):
            if p.settled or p.abandoned:
                return
            started = time.perf_counter()
            try:
                async with pooled_connection(self._pool, keeps_session=True) as conn, conn.transaction():
                    if not await self._check_fences(conn, [p]):
                        return
                    value = await p.run_on(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc) and attempt + 1 < self._solo_attempts:
                    continue
                self._fail(p, exc)
                return
            p.succeed(value)
            self._observer.batch_committed(1, time.perf_counter() - started)
            return

    async def _attempt(
        self, items: list[PendingWrite], isolate: set[int]
    ) -> tuple[list[PendingWrite], set[int], list[PendingWrite]]:
        """One transaction over ``items``; those whose id is in ``isolate`` run each in a savepoint, so their
        own failure settles them and spares the rest. Returns (writes to run again as a batch, the ids of
        those among them to isolate, writes to run alone)."""
        started = time.perf_counter()
        live: list[PendingWrite] = []
        values: list[tuple[PendingWrite, Any]] = []
        fetched: dict[int, list[Any]] = {}  # statement writes' rows, by id(write)
        suspects: list[PendingWrite] = []
        error: Exception | None = None
        try:
            async with pooled_connection(self._pool, keeps_session=True) as conn, conn.transaction():
                live = await self._check_fences(conn, items)
                for p in live:
                    if id(p) in isolate:
                        await self._run_in_savepoint(conn, p, values)
                for p in live:
                    if p.statements is None and id(p) not in isolate:
                        try:
                            values.append((p, await p.run_on(conn)))
                        except Exception as exc:
                            suspects, error = [p], exc
                            raise
                merged = (p for p in live if p.statements is not None and id(p) not in isolate)
                for group in plan_statements(merged):
                    try:
                        for owner, record in await group.run(conn):
                            fetched.setdefault(id(owner), []).append(record)
                    except Exception as exc:
                        suspects, error = group.writers, exc
                        raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if error is not None and not (is_unavailable(error) or is_transient(error)):
                if len(suspects) == 1:
                    self._fail(suspects[0], error)
                rest = [p for p in live if not p.settled and not p.abandoned]
                if rest:
                    self._observer.batch_retried(len(rest), "op failed")
                return rest, {id(p) for p in suspects}, []
            if is_unavailable(exc):
                for p in items:
                    self._fail(p, exc)
                return [], set(), []
            rest = [p for p in items if not p.settled]
            self._observer.batch_retried(len(rest), type(exc).__name__)
            return [], set(), rest
        committed = [p for p in live if not p.settled]  # isolated writes that failed are settled already
        for p, value in values:
            p.succeed(value)
        for p in committed:
            p.succeed(fetched.get(id(p), []))  # statement writes (ops and isolated writes were settled above)
        self._observer.batch_committed(len(committed), time.perf_counter() - started)
        return [], set(), []

    async def _run_in_savepoint(
        self, conn: asyncpg.Connection, p: PendingWrite, values: list[tuple[PendingWrite, Any]]
    ) -> None:
        """A suspect write in its own savepoint: its failure settles it alone; an outage still ends the batch."""
        try:
            async with conn.transaction():  # nested: a savepoint
                value = await p.run_on(conn)
        except Exception as exc:
            if is_unavailable(exc) or is_transient(exc):
                raise
            self._fail(p, exc)
            return
        values.append((p, value))

    async def _check_fences(self, conn: asyncpg.Connection, items: list[PendingWrite]) -> list[PendingWrite]:
        """Reject items whose fence is stale (settling them) and return the ones to run."""
        fenced = [p.fence.station_id for p in items if p.fence is not None]
        current = await lock_current_fences(conn, fenced) if fenced else {}
        live = []
        for p in items:
            if p.settled:
                continue
            fence = p.fence
            if fence is not None and current.get(fence.station_id) != fence.token:
                p.fail(FenceRejected(fence.station_id, fence.token, current.get(fence.station_id)))
                self._observer.fence_rejected(fence.station_id)
                continue
            live.append(p)
        return live

    def _fail(self, p: PendingWrite, exc: BaseException) -> None:
        error = translate(exc)
        if p.fail(error):
            self._observer.write_failed(error)
