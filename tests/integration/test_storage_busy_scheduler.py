"""A Postgres round trip must not cost one trio scheduling batch per asyncio callback.

With thousands of station tasks runnable, every batch takes milliseconds; trio-asyncio's loop ran one asyncio
callback per batch, so a round trip waited for a dozen batches and the replica's writes crawled while Postgres
was idle (csms/storage/loop_turns.py). Counted in batches, not seconds: a ticker task that yields in a loop
runs once per batch.
"""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel

from csms.storage import Database

pytestmark = pytest.mark.integration

QUERIES = 20
BUSY = 1000  # runnable tasks: a batch then lasts longer than a loopback round trip, so batches count turns


async def test_a_round_trip_costs_a_few_scheduler_batches_not_one_per_callback(database_url: str) -> None:
    async with Database.open(database_url, pool_size=2) as db:
        await db.fetchval("SELECT 1")  # connections made
        batches = 0
        stop = trio.Event()

        async def ticker() -> None:
            nonlocal batches
            while not stop.is_set():
                batches += 1
                await trio.lowlevel.checkpoint()

        async def busy() -> None:
            while not stop.is_set():
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            for _ in range(BUSY):
                nursery.start_soon(busy)
            await trio.lowlevel.checkpoint()
            start = batches
            for _ in range(QUERIES):
                assert await db.fetchval("SELECT 1") == 1
            per_query = (batches - start) / QUERIES
            stop.set()
    assert per_query <= 7, f"{per_query:.1f} scheduler batches per round trip"
