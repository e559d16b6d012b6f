"""Group commit: many trio tasks' writes share few transactions, callers return only after COMMIT, and a bad
op fails alone."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from csms.storage import Connection, Database, IntegrityError, NullObserver, Statement, ValueRejected, WriteOp

pytestmark = pytest.mark.integration

_ITEMS = "CREATE TABLE items (id serial PRIMARY KEY, station text NOT NULL, n int NOT NULL UNIQUE)"


@dataclass
class Recorder(NullObserver):
    batches: list[int] = field(default_factory=list)
    retried: list[tuple[int, str]] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)

    def batch_committed(self, size: int, seconds: float) -> None:
        self.batches.append(size)

    def batch_retried(self, size: int, reason: str) -> None:
        self.retried.append((size, reason))

    def write_failed(self, error: BaseException) -> None:
        self.failures.append(error)


def insert(station: str, n: int) -> WriteOp[int]:
    async def op(conn: Connection) -> int:
        await conn.execute("INSERT INTO items (station, n) VALUES ($1, $2)", station, n)
        return int(await conn.fetchval("SELECT txid_current()"))

    return op


async def test_concurrent_writes_share_few_transactions_and_are_visible_on_return(database_url: str) -> None:
    observer = Recorder()
    writes = 300
    async with Database.open(database_url, observer=observer, max_batch=64) as db:
        await db.execute(_ITEMS)
        txids: list[int] = []
        invisible: list[int] = []

        async def station(n: int) -> None:
            txids.append(await db.write(insert(f"CP-{n}", n)))
            # Released only after COMMIT: another connection (the read pool) must already see the row.
            if await db.fetchval("SELECT count(*) FROM items WHERE n = $1", n) != 1:
                invisible.append(n)

        async with trio.open_nursery() as nursery:
            for n in range(writes):
                nursery.start_soon(station, n)

        assert invisible == []
        assert await db.fetchval("SELECT count(*) FROM items") == writes
        assert sum(observer.batches) == writes
        assert len(set(txids)) == len(observer.batches)
        assert len(observer.batches) <= writes // 10, observer.batches
        assert max(observer.batches) <= 64


async def test_caller_waits_for_the_commit_of_its_whole_batch(database_url: str) -> None:
    async with Database.open(database_url, max_wait=0.2) as db:
        await db.execute(_ITEMS)

        async def slow(conn: Connection) -> None:
            await conn.execute("SELECT pg_sleep(0.4)")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.write, slow)
            # The slow op is queued and the writer waits (max_wait 200 ms) for more: ours joins its batch.
            await trio.testing.wait_all_tasks_blocked()
            started = trio.current_time()
            await db.write(insert("CP-1", 1))
            waited = trio.current_time() - started
        assert waited >= 0.35, "released before its batch committed"


async def test_failing_op_fails_alone_and_the_rest_of_its_batch_commits(database_url: str) -> None:
    observer = Recorder()
    async with Database.open(database_url, observer=observer, max_wait=0.05) as db:
        await db.execute(_ITEMS)
        await db.execute("INSERT INTO items (station, n) VALUES ('old', 7)")
        outcomes: dict[int, object] = {}

        async def boom(conn: Connection) -> None:
            await conn.execute("INSERT INTO items (station, n) VALUES ('x', 1000)")
            raise ValueError("domain says no")

        async def station(n: int) -> None:
            try:
                await db.write(insert(f"CP-{n}", n))
                outcomes[n] = "ok"
            except IntegrityError as exc:
                outcomes[n] = exc

        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(station, n)
            with pytest.raises(ValueError, match="domain says no"):
                await db.write(boom)

        assert isinstance(outcomes.pop(7), IntegrityError)  # duplicate of the pre-existing n=7
        assert set(outcomes.values()) == {"ok"}
        rows = await db.fetch("SELECT n FROM items WHERE station <> 'old' ORDER BY n")
        assert [r["n"] for r in rows] == [n for n in range(20) if n != 7]  # nothing of boom's insert
        assert observer.retried, "the failures should have happened inside a shared batch"
        assert len(observer.failures) == 2


@pytest.mark.parametrize(
    "bad_row",
    [("CP-bad\x00", 999), ("CP-bad", 2**31)],  # refused by Postgres (22021) / by the driver encoding it (22000)
    ids=["nul-in-text", "int4-overflow"],
)
async def test_one_bad_merged_statement_costs_the_rest_one_extra_attempt(
    database_url: str, bad_row: tuple[str, int]
) -> None:
    """The same INSERT from 20 writers runs as one executemany; when one row is refused, the group's writers
    are isolated in savepoints of the next attempt: the 19 others commit together, the bad one gets its own
    clean error (not 19 transactions one after another)."""
    observer = Recorder()
    async with Database.open(database_url, observer=observer, max_wait=0.2, max_batch=64) as db:
        await db.execute(_ITEMS)
        sql = "INSERT INTO items (station, n) VALUES ($1, $2)"
        outcomes: dict[int, object] = {}

        async def station(n: int, row: tuple[str, int]) -> None:
            try:
                await db.write_statements([Statement(sql, row)])
                outcomes[n] = "ok"
            except ValueRejected as exc:
                outcomes[n] = exc

        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(station, n, bad_row if n == 13 else (f"CP-{n}", n))

        assert isinstance(outcomes.pop(13), ValueRejected)
        assert set(outcomes.values()) == {"ok"}
        assert await db.fetchval("SELECT count(*) FROM items") == 19
        assert observer.retried == [(20, "op failed")]  # one failed attempt...
        assert observer.batches == [19]  # ...then one transaction for everyone else
        assert len(observer.failures) == 1


async def test_without_group_commit_each_write_is_its_own_transaction(database_url: str) -> None:
    observer = Recorder()
    async with Database.open(database_url, group_commit=False, observer=observer) as db:
        await db.execute(_ITEMS)
        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(db.write, insert("CP", n))
        with pytest.raises(IntegrityError):
            await db.write(insert("CP", 3))
        assert observer.batches == [1] * 20
        assert await db.fetchval("SELECT count(*) FROM items") == 20


async def test_transaction_runs_a_callback_atomically(db: Database) -> None:
    await db.execute(_ITEMS)

    async def move(conn: Connection) -> int:
        await conn.execute("INSERT INTO items (station, n) VALUES ('a', 1)")
        await conn.execute("INSERT INTO items (station, n) VALUES ('a', 1)")  # violates UNIQUE
        return 1

    with pytest.raises(IntegrityError) as caught:
        await db.transaction(move)
    assert caught.value.sqlstate == "23505"
    assert await db.fetchval("SELECT count(*) FROM items") == 0


async def test_json_round_trips_as_python_values(db: Database) -> None:
    await db.execute("CREATE TABLE docs (id int PRIMARY KEY, body jsonb NOT NULL)")

    async def put(conn: Connection) -> None:
        await conn.execute("INSERT INTO docs VALUES (1, $1)", {"idTag": "ABC", "values": [1, 2.5]})

    await db.write(put)
    row = await db.fetchrow("SELECT body FROM docs WHERE id = 1")
    assert row is not None
    assert row["body"] == {"idTag": "ABC", "values": [1, 2.5]}
