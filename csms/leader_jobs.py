"""Singleton jobs the leader runs: expiring stale commands and rebalancing stations after a scale-out."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import httpx

from cluster import Coordinator, plan_shedding
from csms.commands import SECRET_HEADER, CommandService
from csms.operations import OperationsRecorder
from csms.transactions import TransactionLedger

log = logging.getLogger(__name__)

Shed = Callable[[int], Awaitable[int]]


async def expire_stale_commands(commands: CommandService) -> None:
    expired = await commands.expire_stale()
    if expired:
        log.warning("stale pending commands closed as unknown_outcome", extra={"count": expired})


async def expire_reservations(recorder: OperationsRecorder) -> None:
    expired = await recorder.expire_reservations()
    if expired:
        log.info("reservations expired", extra={"count": expired})


async def close_abandoned_transactions(ledger: TransactionLedger, horizon_hours: float) -> None:
    closed = await ledger.close_abandoned(horizon_hours * 3600)
    if closed:
        log.warning("transactions closed as abandoned", extra={"count": closed, "horizon_hours": horizon_hours})


class Rebalancer:
    """Asks over-loaded replicas to shed stations until ownership is within tolerance of even."""

    def __init__(
        self,
        coordinator: Coordinator,
        client: httpx.AsyncClient,
        secret: str,
        local_shed: Shed,
        tolerance: float,
        step_fraction: float = 0.25,
    ) -> None:
        self._coordinator = coordinator
        self._client = client
        self._secret = secret
        self._local_shed = local_shed
        self._tolerance = tolerance
        self._step_fraction = step_fraction

    async def round(self) -> None:
        nodes = {n.node_id: n for n in await self._coordinator.nodes()}
        counts = await self._coordinator.owned_counts()
        step = max(1, math.ceil(sum(counts.values()) * self._step_fraction))
        plan = plan_shedding(counts, list(nodes), self._tolerance, step)
        for node_id, count in plan.items():
            log.info("rebalance: asking a replica to shed stations", extra={"node": node_id, "count": count})
            try:
                if node_id == self._coordinator.node_id:
                    await self._local_shed(count)
                elif self._secret:
                    response = await self._client.post(
                        nodes[node_id].address.rstrip("/") + "/internal/v1/shed",
                        json={"count": count},
                        headers={SECRET_HEADER: self._secret},
                        timeout=60,
                    )
                    response.raise_for_status()
            except httpx.HTTPError as exc:
                log.warning("rebalance request failed", extra={"node": node_id, "error": repr(exc)})
