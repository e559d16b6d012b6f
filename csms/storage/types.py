"""Types domain modules use to write SQL through storage without importing asyncpg.

Write ops are asyncio-flavoured coroutines (``async def op(conn: Connection) -> T``) that storage runs on
its asyncio loop, many per transaction: inside one, only await ``conn`` methods (no trio calls), and keep it
free of side effects outside ``conn``, because storage may roll a batch back and run the op again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Row(Protocol):
    """A result row (asyncpg's Record): index by column name or position."""

    def __getitem__(self, key: str | int, /) -> Any: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...
    def get(self, key: str, default: Any = None, /) -> Any: ...
    def keys(self) -> Iterable[str]: ...
    def values(self) -> Iterable[Any]: ...
    def items(self) -> Iterable[tuple[str, Any]]: ...


class Connection(Protocol):
    """The subset of asyncpg's Connection that write ops and ``Database.transaction`` callbacks may use.

    Queries use ``$1, $2`` placeholders. json/jsonb columns take and return plain Python values (orjson).
    Statements are bounded by the Database's statement_timeout; there is no per-call timeout.
    """

    async def execute(self, query: str, *args: Any) -> str: ...
    async def executemany(self, command: str, args: Iterable[Sequence[Any]]) -> None: ...
    async def fetch(self, query: str, *args: Any) -> list[Any]: ...
    async def fetchrow(self, query: str, *args: Any) -> Any: ...
    async def fetchval(self, query: str, *args: Any, column: int = 0) -> Any: ...


WriteOp = Callable[[Connection], Awaitable[T]]
"""``async def op(conn) -> T``: run by the group-commit writer inside a (shared) transaction."""


@dataclass(slots=True)
class Statement:
    """One SQL statement and its arguments, for ``Database.write_statements``.

    Plain data instead of a coroutine lets the writer merge the same statement from every write of a batch
    into one pipelined ``executemany`` (one round trip instead of one per write). Not frozen, for the same
    reason as ``SampledValue``: a message makes up to ~20 of these; treat it as a value all the same.
    """

    sql: str
    args: tuple[Any, ...] = ()
    returns_row: bool = False
    """True: the SQL yields exactly one row (e.g. ``RETURNING`` of a row that must exist, or a ``WITH ...
    SELECT`` of one row), which becomes part of the write's result; merged as one pipelined ``fetchmany``.
    Not with ``bulk``."""
    bulk: bool = False
    """``sql`` takes one parameter, a JSON array of argument rows (``$1::jsonb``): merged across a batch it
    runs once for every row instead of once per row (one statement, one executor start, one round trip)."""
    independent: bool = False
    """Neither reads what the write's earlier statements changed nor is read by its later ones (a plain
    append, like an outbox event): the writer may run it with the batch's first group of its SQL, out of the
    write's order, which saves a batch a round trip. Ignored for ``returns_row`` (the write's rows keep their
    order)."""

    def execute_args(self) -> tuple[Any, ...]:
        """The parameters to run this statement by itself."""
        return ([self.args],) if self.bulk else self.args


@dataclass(frozen=True, slots=True)
class Fence:
    """A station's fence token as recorded by ``Database.record_fence``; a fenced write commits only if it
    is still the station's current token (ARCHITECTURE.md section 3)."""

    station_id: str
    token: int
