"""Cluster (replicas, leader, lease health, stations owned, drain state, moves over time) and the audit trail."""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from typing import Any

import httpx
import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cluster import NodeInfo
from csms.console.services import ConsoleServices
from csms.console.web import Page, query_int, signed_in, uptime

READY_TIMEOUT = 0.5


async def _readiness(s: ConsoleServices, node: NodeInfo, found: dict[str, Any]) -> None:
    """One replica's /readyz (drain state shows as accepting=false); bounded: a dead replica costs 0.5 s.
    This replica's own checks are read in-process (no HTTP round trip to itself)."""
    if node.node_id == s.coordinator.node_id:
        found[node.node_id] = await s.readiness()
        return
    try:
        response = await s.http.get(f"{node.address}/readyz", timeout=READY_TIMEOUT)
        found[node.node_id] = response.json().get("checks", {})
    except (httpx.HTTPError, ValueError):
        found[node.node_id] = None


def cluster_routes(s: ConsoleServices, page: Page) -> list[Route]:
    @signed_in(s.auth)
    async def cluster(request: Request) -> Response:
        c = s.coordinator
        nodes = await c.nodes()
        checks: dict[str, Any] = {}
        found: dict[str, Any] = {}

        async def load(name: str, fn: Any) -> None:
            found[name] = await fn()

        async with trio.open_nursery() as nursery:
            for node in nodes:
                nursery.start_soon(_readiness, s, node, checks)
            nursery.start_soon(load, "owned", s.owned_counts)
            nursery.start_soon(load, "moves", partial(s.aggregates.get, "moves", partial(s.fleet.moves, minutes=60)))
        owned, moves = found["owned"], found["moves"]
        timeline: dict[str, dict[str, Any]] = defaultdict(dict)
        for row in moves:
            timeline[row["minute"]][row["node_id"]] = row
        replicas = [
            {
                "node_id": n.node_id,
                "version": n.version,
                "address": n.address,
                "uptime": uptime(n.started_at),
                "owned": owned.get(n.node_id, 0),
                "leader": n.node_id == c.leader_id,
                "checks": checks.get(n.node_id),
            }
            for n in sorted(nodes, key=lambda n: n.node_id)
        ]
        context = {
            "replicas": replicas,
            "serving": c.node_id,
            "healthy": c.healthy,
            "leader": c.leader_id,
            "timeline": sorted(timeline.items(), reverse=True)[:60],
            "timeline_nodes": sorted({row["node_id"] for row in moves}),
            "aggregate_seconds": s.aggregates.seconds,
        }
        return page.render(request, "cluster.html", context)

    @signed_in(s.auth)
    async def audit(request: Request) -> Response:
        size = query_int(request, "size", 50, 1, 100)
        commands = await s.commands.page(limit=size)
        actions = await s.audit.page(limit=size)
        return page.render(request, "audit.html", {"commands": commands, "actions": actions})

    return [Route("/cluster", cluster), Route("/audit", audit)]
