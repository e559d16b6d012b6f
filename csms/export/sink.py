"""What an exporter delivers to: a sink acknowledges a whole batch of CloudEvents or raises."""

from __future__ import annotations

from typing import Any, Protocol

CloudEvent = dict[str, Any]


class DeliveryFailed(Exception):
    """The sink did not acknowledge the batch (the exporter retries it; the cursor stays put)."""


class Sink(Protocol):
    name: str  # the durable cursor's key: renaming a sink starts it from the beginning

    async def deliver(self, events: list[CloudEvent]) -> None:
        """Return only once the sink acknowledged every event of the batch (in order); else raise."""
        ...
