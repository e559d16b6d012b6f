"""A Postgres round trip must not cost one trio scheduling batch per asyncio callback.

With thousands of station tasks runnable, every batch takes milliseconds; trio-asyncio's loop ran one asyncio
callback per batch, so a round trip waited for a dozen batches and the replica's writes crawled while Postgres
was idle (csms/storage/loop_turns.py). Counted in batches, not seconds (tests/batches.py).
"""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel

from csms.storage import Database
from tests.batches import BatchCounter

pytestmark = pytest.mark.integration

QUERIES = 20
BUSY = 1000  # runnable tasks: a batch then lasts longer than a loopback round trip, so batches count turns


async def test_a_round_trip_costs_a_few_scheduler_batches_not_one_per_callback(database_url: str) -> None:
    async with Database.open(database_url, pool_size=2) as db:
        await db.fetchval("SELECT 1")  # connections made
        batches = BatchCounter()

        async def busy() -> None:
            while True:
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(batches.run)
            for _ in range(BUSY):
                nursery.start_soon(busy)
            await trio.lowlevel.checkpoint()
            start = batches.count
            for _ in range(QUERIES):
                assert await db.fetchval("SELECT 1") == 1
            per_query = (batches.count - start) / QUERIES
            nursery.cancel_scope.cancel()
    assert per_query <= 7, f"{per_query:.1f} scheduler batches per round trip"
