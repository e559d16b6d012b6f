"""Liveness, readiness, Prometheus metrics and the cluster view: what probes, scrapers and dashboards read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cluster import Coordinator
from csms.api.auth import TokenAuth
from csms.api.contract import Answer, Operation, route
from csms.api.models.resources import Cluster, Health, Readiness
from csms.api.responses import JsonResponse
from csms.observability import Metrics

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]

HEALTHZ = Operation("GET", "/healthz", "healthz", "health", "Liveness", None, {200: Answer(Health, "Alive.")})
READYZ = Operation(
    "GET", "/readyz", "readyz", "health", "Readiness: database, migrations, cluster membership, accepting connections",
    None, {200: Answer(Readiness, "Ready."), 503: Answer(Readiness, "Not ready.")},
)  # fmt: skip
METRICS = Operation(
    "GET", "/metrics", "metrics", "health", "Prometheus metrics", None,
    {200: Answer(None, "Prometheus text exposition.", "text/plain")},
)  # fmt: skip
CLUSTER = Operation(
    "GET", "/api/v1/cluster", "cluster", "cluster", "Replicas, the leader and how many stations each holds", "read",
    {200: Answer(Cluster, "The cluster as this replica sees it.")},
)  # fmt: skip
OPERATIONS = (HEALTHZ, READYZ, METRICS, CLUSTER)


async def render_metrics(registry: CollectorRegistry) -> bytes:
    """The exposition text, rendered in a worker thread: at 19,000 stations a scrape takes ~30 ms of pure
    Python, which on the event loop stalled every station for that long at each scrape (slow-step metric).
    prometheus_client's metrics are thread-safe; the GIL hands the loop a turn every few milliseconds."""
    return await trio.to_thread.run_sync(generate_latest, registry)


def health_routes(
    auth: TokenAuth, readiness: ReadinessCheck, metrics: Metrics, coordinator: Coordinator
) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return JsonResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        checks = await readiness()
        ready = all(checks.values())
        return JsonResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    async def prometheus(request: Request) -> Response:
        return Response(await render_metrics(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def cluster_view(request: Request) -> Response:
        nodes = await coordinator.nodes()
        counts = await coordinator.owned_counts()
        return JsonResponse(
            {
                "node_id": coordinator.node_id,
                "leader": coordinator.leader_id,
                "healthy": coordinator.healthy,
                "nodes": [
                    {
                        "node_id": n.node_id,
                        "address": n.address,
                        "version": n.version,
                        "started_at": n.started_at,
                        "stations": counts.get(n.node_id, 0),
                    }
                    for n in nodes
                ],
            }
        )

    return [route(HEALTHZ, auth, healthz), route(READYZ, auth, readyz), route(METRICS, auth, prometheus),
            route(CLUSTER, auth, cluster_view)]  # fmt: skip
