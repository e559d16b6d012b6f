"""Statement writes: the writer merges the same SQL of a whole batch into one executemany, keeps each write's
own order, and a bad statement still fails only its own write."""

from __future__ import annotations

import pytest
import trio

from csms.storage import Database, Fence, FenceRejected, IntegrityError, NullObserver, Statement, StorageError
from csms.storage.batch import PendingWrite, plan_statements

pytestmark = pytest.mark.integration

_ITEMS = "CREATE TABLE items (id serial PRIMARY KEY, station text NOT NULL, n int NOT NULL UNIQUE)"
_LOG = "CREATE TABLE log (id serial PRIMARY KEY, station text NOT NULL, n int NOT NULL)"
_INSERT_ITEM = "INSERT INTO items (station, n) VALUES ($1, $2)"
_INSERT_LOG = "INSERT INTO log (station, n) VALUES ($1, $2)"


class Batches(NullObserver):
    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.retried: list[int] = []

    def batch_committed(self, size: int, seconds: float) -> None:
        self.sizes.append(size)

    def batch_retried(self, size: int, reason: str) -> None:
        self.retried.append(size)


def _write(*statements: tuple[str, tuple[object, ...]]) -> PendingWrite:
    return PendingWrite(None, None, tuple(Statement(sql, args) for sql, args in statements))


def test_plan_merges_same_sql_and_keeps_each_writes_order() -> None:
    a = _write(("X", (1,)), ("Y", (1,)))
    b = _write(("Y", (2,)), ("X", (2,)))  # X after Y: may not join the first X group, which runs before Y
    c = _write(("X", (3,)), ("Y", (3,)))
    groups = plan_statements([a, b, c])
    assert [(g.sql, g.rows) for g in groups] == [("X", [(1,), (3,)]), ("Y", [(1,), (2,), (3,)]), ("X", [(2,)])]
    assert groups[1].writers == [a, b, c]
    # every write's statements appear in the order it gave them
    for write in (a, b, c):
        positions = [i for i, g in enumerate(groups) for w in g.writers if w is write]
        assert positions == sorted(positions)


def test_plan_runs_an_independent_statement_with_the_first_group_of_its_sql() -> None:
    """A status write (history, state, event) and a meter write (samples, event): the events, plain appends,
    share one group, so the batch costs four round trips instead of five."""
    event = Statement("EVENT", (1,), bulk=True, independent=True)
    meter = PendingWrite(None, None, (Statement("SAMPLES", (1,)), event))
    status = PendingWrite(None, None, (Statement("HISTORY", (2,)), Statement("STATE", (2,)), event))
    groups = plan_statements([meter, status])
    assert [g.sql for g in groups] == ["SAMPLES", "EVENT", "HISTORY", "STATE"]
    assert groups[1].writers == [meter, status]
    ordered = Statement("EVENT", (1,), bulk=True)  # not independent: after its write's earlier statements
    groups = plan_statements([meter, PendingWrite(None, None, (Statement("HISTORY", (2,)), ordered))])
    assert [g.sql for g in groups] == ["SAMPLES", "EVENT", "HISTORY", "EVENT"]


async def test_statement_writes_share_batches_and_are_committed_on_return(database_url: str) -> None:
    observer = Batches()
    async with Database.open(database_url, observer=observer, max_wait=0.02) as db:
        await db.execute(_ITEMS)
        await db.execute(_LOG)
        missing: list[int] = []

        async def station(n: int) -> None:
            await db.write_statements([Statement(_INSERT_ITEM, (f"CP-{n}", n)), Statement(_INSERT_LOG, (f"CP-{n}", n))])
            if await db.fetchval("SELECT count(*) FROM items WHERE n = $1", n) != 1:
                missing.append(n)

        async with trio.open_nursery() as nursery:
            for n in range(200):
                nursery.start_soon(station, n)
        assert missing == []
        assert await db.fetchval("SELECT count(*) FROM items") == 200
        assert await db.fetchval("SELECT count(*) FROM log") == 200
        assert sum(observer.sizes) == 200
        assert len(observer.sizes) <= 20, observer.sizes


async def test_a_failing_merged_statement_fails_only_its_own_write(database_url: str) -> None:
    observer = Batches()
    async with Database.open(database_url, observer=observer, max_wait=0.2) as db:
        await db.execute(_ITEMS)
        await db.execute(_LOG)
        await db.execute("INSERT INTO items (station, n) VALUES ('old', 7)")
        outcomes: dict[int, object] = {}

        async def station(n: int) -> None:
            try:
                await db.write_statements([Statement(_INSERT_LOG, ("s", n)), Statement(_INSERT_ITEM, ("s", n))])
                outcomes[n] = "ok"
            except IntegrityError as exc:
                outcomes[n] = exc

        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(station, n)
        assert isinstance(outcomes.pop(7), IntegrityError)  # duplicate of the pre-existing n=7
        assert set(outcomes.values()) == {"ok"}
        logged = await db.fetch("SELECT n FROM log ORDER BY n")
        assert [r["n"] for r in logged] == [n for n in range(20) if n != 7]  # the failed write left nothing
    # It was merged: the one executemany failed for the whole batch of 20 (a lone statement would have named
    # its write at once), the batch ran again with each write in a savepoint, and the other 19 committed
    # together in that one transaction.
    assert observer.retried == [20]
    assert observer.sizes == [19]


async def test_row_returning_statements_answer_each_write_with_its_own_rows(database_url: str) -> None:
    """Merged into one fetchmany per batch, yet each write gets the rows its own arguments yielded, in its
    order, also when a neighbour fails and the batch is re-run with it isolated."""
    observer = Batches()
    async with Database.open(database_url, observer=observer, max_wait=0.05) as db:
        await db.execute(_ITEMS)
        await db.execute(_LOG)
        await db.execute("INSERT INTO items (station, n) VALUES ('old', 7)")
        answers: dict[int, object] = {}

        async def station(n: int) -> None:
            statements = [
                Statement(_INSERT_LOG + " RETURNING n * 10 AS tens", (f"CP-{n}", n), returns_row=True),
                Statement(_INSERT_ITEM, (f"CP-{n}", n)),
                Statement("SELECT count(*) AS c, $1::text AS station FROM log WHERE station = $1", (f"CP-{n}",), True),
            ]
            try:
                rows = await db.write_statements(statements)
                answers[n] = [(rows[0]["tens"], rows[1]["c"], rows[1]["station"])]
            except IntegrityError:
                answers[n] = "duplicate"

        async with trio.open_nursery() as nursery:
            for n in range(30):
                nursery.start_soon(station, n)
        assert answers.pop(7) == "duplicate"
        assert answers == {n: [(n * 10, 1, f"CP-{n}")] for n in range(30) if n != 7}
        assert max(observer.sizes) > 1  # the rows came from merged batches


async def test_a_row_returning_statement_without_its_row_fails_its_write(db: Database) -> None:
    await db.execute(_LOG)
    with pytest.raises(StorageError, match="one-row statement"):
        await db.write_statements([Statement("SELECT n FROM log WHERE n = $1", (1,), returns_row=True)])


async def test_statement_writes_are_fenced(db: Database) -> None:
    await db.execute(_ITEMS)
    old = await db.record_fence("CP-1", 1, 5, "node-a")
    assert old is not None
    await db.write_statements([Statement(_INSERT_ITEM, ("CP-1", 1))], fence=Fence("CP-1", old))
    assert await db.record_fence("CP-1", 1, 6, "node-b")
    with pytest.raises(FenceRejected):
        await db.write_statements([Statement(_INSERT_ITEM, ("CP-1", 2))], fence=Fence("CP-1", old))
    with pytest.raises(FenceRejected):  # no statements: the fence is still checked
        await db.write_statements([], fence=Fence("CP-1", old))
    assert await db.fetchval("SELECT count(*) FROM items") == 1


async def test_reads_skip_the_reset_but_session_changes_are_still_reset(database_url: str) -> None:
    async with Database.open(database_url, pool_size=1) as db:
        await db.execute("SET application_name = 'changed'")
        assert await db.fetchval("SELECT current_setting('application_name')") == "csms"
