"""A replica carrying out the leader's shed order: hold admission, then close the stations that cost least to move.

Moving a station costs it a session on some firmware, so the victims are chosen, not taken in any order:
- never a station connected for less than the cool-down: a younger connection means that station was just
  (re)connected, perhaps shed by another replica, so whatever replica holds it, rebalancing disconnects one
  station at most once per cool-down (the connection's age travels with the station; no shared record needed);
- idle stations (no open transaction, asked of Postgres) first; charging ones only for the severe part of
  the excess the leader allows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cluster import ShedOrder
from csms.observability import Metrics
from csms.stations import Gateway
from csms.transactions import TransactionLedger

log = logging.getLogger(__name__)

# (order, seconds to hold admission) -> stations shed
Shed = Callable[[ShedOrder, float], Awaitable[int]]


@dataclass
class Shedder:
    gateway: Gateway
    ledger: TransactionLedger
    metrics: Metrics
    rate: float  # stations closed per second
    cooldown: float  # seconds a station stays where it (re)connected before rebalancing may move it

    async def __call__(self, order: ShedOrder, hold: float) -> int:
        if order.target > 0 and hold > 0:
            self.gateway.admission.hold(order.target, hold)
        if order.count <= 0:
            return 0
        candidates = self.gateway.settled_stations(self.cooldown)
        charging = await self.ledger.stations_charging(candidates)
        idle = [s for s in candidates if s not in charging][: order.count]
        busy = [s for s in candidates if s in charging][: min(order.may_interrupt, order.count - len(idle))]
        shed = await self.gateway.shed(idle + busy, self.rate)
        self.metrics.rebalance_shed.labels("false").inc(len(idle))
        self.metrics.rebalance_shed.labels("true").inc(len(busy))
        log.info(
            "rebalance: shed stations",
            extra={"asked": order.count, "idle": len(idle), "charging": len(busy), "eligible": len(candidates)},
        )
        return shed
