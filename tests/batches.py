"""Counting trio's scheduling batches, the unit a task waits in under load (each trip through the scheduler)."""

from __future__ import annotations

import trio


class BatchCounter:
    """Start ``run`` in a nursery: it runs once per scheduling batch, so ``count`` counts batches (give or take
    one: trio reverses a batch's order at random)."""

    def __init__(self) -> None:
        self.count = 0

    async def run(self) -> None:
        while True:
            self.count += 1
            await trio.lowlevel.checkpoint()
