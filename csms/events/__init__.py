"""In-process domain events: how modules react to each other without importing each other.

Subscribers are plain callables run synchronously in publish order. They must not block: a subscriber that has
slow work hands it to its own bounded channel or nursery. That keeps publishing cheap on the message hot path
and makes back-pressure the subscriber's explicit choice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")


@dataclass(frozen=True)
class StationConnected:
    station_id: str
    connection_id: str
    protocol: str


@dataclass(frozen=True)
class StationDisconnected:
    station_id: str
    connection_id: str
    reason: str


@dataclass(frozen=True)
class StationBooted:
    station_id: str
    status: str


@dataclass(frozen=True)
class TransactionStarted:
    station_id: str
    connector_id: int
    transaction_id: int
    id_tag: str


@dataclass(frozen=True)
class TransactionStopped:
    station_id: str
    transaction_id: int
    energy_wh: int | None


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[type, list[Callable[[Any], None]]] = defaultdict(list)

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        self._subscribers[event_type].append(handler)

    def publish(self, event: object) -> None:
        for handler in self._subscribers.get(type(event), ()):
            try:
                handler(event)
            except Exception:
                # One broken subscriber must not break the publisher (a station's message handling).
                log.exception("event subscriber failed", extra={"event": type(event).__name__})


__all__ = [
    "EventBus",
    "StationBooted",
    "StationConnected",
    "StationDisconnected",
    "TransactionStarted",
    "TransactionStopped",
]
