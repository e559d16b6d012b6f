"""Singleton jobs the leader runs: expiring stale commands and rebalancing stations after a scale-out."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import trio

from cluster import Coordinator, NodeInfo, ShedOrder, plan_shedding, still_landing
from csms.commands import SECRET_HEADER, CommandService
from csms.operations import OperationsRecorder
from csms.shedding import Shed
from csms.transactions import TransactionLedger

log = logging.getLogger(__name__)

MAX_HOLD = 600.0  # seconds


@dataclass(frozen=True)
class RebalanceSettings:
    tolerance: float  # allowed deviation from an even spread
    active_tx_imbalance: float  # excess over the fair share above which charging stations may be shed
    interval: float  # seconds between rounds
    drain_rate: float  # stations a replica closes per second
    step_fraction: float = 0.25  # most stations one node sheds in a round, as a fraction of the fleet
    hold_slack: float = 5.0  # seconds shed stations get to reconnect while full replicas refuse newcomers


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
    """Asks over-loaded replicas to shed stations until ownership is within tolerance of even.

    Every replica at or above its fair share is told to hold admission while the round's stations reconnect,
    so they land on the under-loaded ones (see cluster.rebalance). For a while after a round the fleet size it
    saw is kept as a floor: stations still reconnecting are owned by nobody, and must not look like a smaller
    fleet whose mean the others already exceed. No round while the owned total is still growing (a reconnect
    storm), nor on the first look at a set of ready nodes (a new leader, a node gone or joined): see
    ``still_landing``.
    """

    def __init__(
        self,
        coordinator: Coordinator,
        client: httpx.AsyncClient,
        secret: str,
        local_shed: Shed,
        settings: RebalanceSettings,
        on_round: Callable[[], None] = lambda: None,
    ) -> None:
        self._coordinator = coordinator
        self._client = client
        self._secret = secret
        self._local_shed = local_shed
        self._s = settings
        self._floor = 0
        self._floor_until = 0.0
        self._last_total: int | None = None  # owned stations seen by the previous round (None: none yet)
        self._last_nodes: set[str] = set()  # the ready nodes it saw
        self._on_round = on_round  # called for each round that gives orders

    async def round(self) -> None:
        # A draining (or otherwise unready) replica is no destination: its stations are leaving it.
        members = await self._coordinator.nodes()
        if len(members) < 2:
            return
        nodes = {n.node_id: n for n in members if await self._ready(n)}
        counts = await self._coordinator.owned_counts()
        total = sum(counts.get(node, 0) for node in nodes)
        floor = self._floor if trio.current_time() < self._floor_until else 0
        s = self._s
        previous, self._last_total = self._last_total, total
        if set(nodes) != self._last_nodes:  # one left (its stations are moving) or joined: look once first
            previous, self._last_nodes = None, set(nodes)
        if still_landing(total, previous, len(nodes), tolerance=s.tolerance, fleet=floor):
            log.info("rebalance: stations still landing, no round", extra={"owned": total, "before": previous})
            return
        step = max(1, math.ceil(max(total, floor) * s.step_fraction))
        plan = plan_shedding(
            counts, list(nodes), tolerance=s.tolerance, step=step, severe=s.active_tx_imbalance, fleet=floor
        )
        if not plan:
            return
        shed_most = max(order.count for order in plan.values())
        # Until the next round (which renews it while still uneven) plus the time shed stations take to come back:
        # a station backing off after two refusals must still find the full replicas refusing. Capped, because
        # once even a hold only delays newcomers (each at most 3 refusals per replica).
        hold = min(shed_most / s.drain_rate + s.interval + s.hold_slack, MAX_HOLD)
        self._on_round()
        self._floor, self._floor_until = max(total, floor), trio.current_time() + hold + s.interval
        log.info("rebalance round", extra={"counts": counts, "orders": {n: o.count for n, o in plan.items()}})
        async with trio.open_nursery() as nursery:
            for node_id, order in plan.items():
                nursery.start_soon(self._order, nodes[node_id], order, hold)

    async def _ready(self, node: NodeInfo) -> bool:
        try:
            return (await self._client.get(node.address.rstrip("/") + "/readyz", timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False

    async def _order(self, node: NodeInfo, order: ShedOrder, hold: float) -> None:
        try:
            if node.node_id == self._coordinator.node_id:
                await self._local_shed(order, hold)
            elif self._secret:
                response = await self._client.post(
                    node.address.rstrip("/") + "/internal/v1/shed",
                    json={
                        "count": order.count,
                        "target": order.target,
                        "may_interrupt": order.may_interrupt,
                        "hold": hold,
                    },
                    headers={SECRET_HEADER: self._secret},
                    timeout=60,
                )
                response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("rebalance request failed", extra={"node": node.node_id, "error": repr(exc)})
