"""One station message = one unit of work: one transaction, one fence check, one group-commit wait.

A message often changes tables of several modules (StartTransaction: the ledger's transaction, the operations
module's reservation and remote start). Each module keeps its SQL to itself and exposes *write-op builders*:
plain functions returning either statements (``list[Statement]``, merged by the writer across a batch) or an
op (``async def op(conn) -> T``). The composition root joins the parts of one message and submits them once:
statements only -> ``Database.write_statements(a + b)``; otherwise one op that awaits each part in order
(``await run_statements(conn, part)`` for statement parts), so a failing part leaves none of the others.

``unit_of_work()`` makes the rule checkable: inside it a second write raises ``SecondWrite``, a bug that
the handler tests catch instead of a message that is half stored when the second commit fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from csms.storage.errors import StorageError
from csms.storage.types import Connection, Statement


class SecondWrite(RuntimeError):
    """A second write was submitted inside one unit of work (a programming error, not a storage failure)."""


_writes: ContextVar[list[int] | None] = ContextVar("csms_unit_of_work", default=None)


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Everything the caller's task writes in this block must be one ``Database.write*`` call."""
    token = _writes.set([0])
    try:
        yield
    finally:
        _writes.reset(token)


def note_write() -> None:
    """Called by Database for every submitted write: the second one inside a unit of work raises."""
    count = _writes.get()
    if count is None:
        return
    if count[0]:
        raise SecondWrite("a second write inside one unit of work: compose the parts into one op")
    count[0] = 1


async def run_statements(conn: Connection, statements: Sequence[Statement]) -> list[Any]:
    """A statement part inside a composed op: the statements in order, on the op's transaction; returns the
    rows of its ``returns_row`` statements, in order (as ``Database.write_statements`` does)."""
    rows: list[Any] = []
    for statement in statements:
        if statement.returns_row:
            rows += one_row_each(await conn.fetch(statement.sql, *statement.execute_args()), 1, statement.sql)
        else:
            await conn.execute(statement.sql, *statement.execute_args())
    return rows


def one_row_each(records: list[Any], expected: int, sql: str) -> list[Any]:
    """A ``returns_row`` statement must yield exactly one row per run (else rows cannot be matched to their
    writes): anything else fails the write."""
    if len(records) != expected:
        raise StorageError(f"{len(records)} rows for {expected} runs of a one-row statement: {sql.strip()[:80]}")
    return records
