"""Overview, the station list (server-side search, filters, sort, paging) and station detail with commands."""

from __future__ import annotations

from functools import partial
from typing import Any

import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from csms.api.commands_routes import submit_command
from csms.api.errors import ApiError
from csms.console.charts import session_charts
from csms.console.command_panel import bulk_panel, station_panel
from csms.console.forms import version_of
from csms.console.services import ConsoleServices, live_nodes
from csms.console.web import (
    PAGE_SIZES,
    ConsoleError,
    Page,
    query_choice,
    query_int,
    query_text,
    session_of,
    signed_in,
)
from csms.stations import STATES, StationFilter
from csms.stations.fleet import SORTS

MAX_OFFSET = 100_000


def station_filter(request: Request) -> StationFilter:
    return StationFilter(
        q=query_text(request, "q"),
        state=query_choice(request, "state", STATES),
        owner=query_text(request, "owner"),
        protocol=query_text(request, "protocol"),
        vendor=query_text(request, "vendor"),
        model=query_text(request, "model"),
        firmware=query_text(request, "firmware"),
        sort=query_choice(request, "sort", tuple(SORTS), "id") or "id",
        descending=query_choice(request, "dir", ("asc", "desc"), "asc") == "desc",
    )


def fleet_routes(s: ConsoleServices, page: Page) -> list[Route]:
    @signed_in(s.auth)
    async def overview(request: Request) -> Response:
        nodes = await s.coordinator.nodes()
        live = [n.node_id for n in nodes]
        context: dict[str, Any] = {}

        async def load(name: str, fn: Any, *args: Any) -> None:
            context[name] = await fn(*args)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(load, "counts", s.aggregates.get, ("counts", *live), partial(s.fleet.counts, live))
            nursery.start_soon(load, "today", s.sessions.today)
            nursery.start_soon(load, "offline", s.fleet.offline_longest, live)
            nursery.start_soon(load, "faults", s.fleet.recent_faults)
            nursery.start_soon(load, "notices", s.fleet.recent_notifications)
            nursery.start_soon(load, "owned", s.owned_counts)
        context["nodes"] = nodes
        context["leader"] = s.coordinator.leader_id
        context["aggregate_seconds"] = s.aggregates.seconds
        return page.render(request, "overview.html", context)

    @signed_in(s.auth)
    async def stations(request: Request) -> Response:
        f = station_filter(request)
        size = query_int(request, "size", 50, 1, 100)
        offset = query_int(request, "offset", 0, 0, MAX_OFFSET)
        live = await live_nodes(s.coordinator)
        items, more = await s.fleet.search(f, live, limit=size, offset=offset)
        context = {
            "f": f,
            "items": items,
            "more": more,
            "offset": offset,
            "size": size,
            "sizes": PAGE_SIZES,
            "states": STATES,
            "sorts": tuple(SORTS),
            "facets": await s.fleet.facets() if "fragment" not in request.query_params else {},
            "nodes": live,
            "bulk_panel": bulk_panel(page.env),
        }
        return page.render(request, "stations.html", context)

    @signed_in(s.auth)
    async def station(request: Request) -> Response:
        station_id = str(request.path_params["station_id"])
        found = await s.registry.get(station_id)
        if found is None:
            raise ConsoleError(404, f"station {station_id} is not registered")
        context: dict[str, Any] = {"station": found}

        async def load(name: str, fn: Any, *args: Any, **kwargs: Any) -> None:
            context[name] = await fn(*args, **kwargs)

        # A live update re-reads one block (every change re-reads both): only that block's data.
        fragment = request.query_params.get("fragment", "")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(load, "presence", s.fleet.presence, station_id)
            if fragment != "ops":
                nursery.start_soon(load, "owner", s.coordinator.owner_of, station_id)
                nursery.start_soon(load, "connections", s.fleet.connections, station_id)
                nursery.start_soon(load, "active", s.sessions.active_on, station_id)
                nursery.start_soon(load, "notifications", s.registry.notifications, station_id, 10)
                nursery.start_soon(load, "history", partial(s.commands.page, station_id=station_id, limit=20))
            if fragment != "live":
                nursery.start_soon(load, "state", s.operations.station_state, station_id)
                nursery.start_soon(load, "reservations", _reservations, s, station_id)
        charts = []
        if context.get("active"):
            series = await s.sessions.series(context["active"][0]["id"], station_id)
            charts = session_charts(series)
        presence = context["presence"]
        version = version_of(presence["protocol"] if presence else None)
        context.update(
            charts=charts,
            version=version,
            protocol=presence["protocol"] if presence else None,
            panel=station_panel(page.env, version, station_id),
        )
        return page.render(request, "station.html", context)

    @signed_in(s.auth, "operator")
    async def command(request: Request) -> Response:
        """JSON in (the form's payload), the command record or an API error body out, as the REST API."""
        station_id = str(request.path_params["station_id"])
        action = str(request.path_params["action"])
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(_error(400, "bad_request", "the payload is not JSON"), status_code=400)
        if not isinstance(body, dict):
            return JSONResponse(_error(400, "bad_request", "the payload must be a JSON object"), status_code=400)
        actor = session_of(request).actor
        try:
            record, status = await submit_command(
                s.commands,
                s.registry,
                s.payloads,
                station_id,
                action,
                body,
                actor,
                is_async=bool(request.query_params.get("async")),
            )
        except ApiError as exc:
            error = _error(exc.status, exc.code, exc.message)
            if exc.details:
                error["error"]["details"] = exc.details
            return JSONResponse(error, status_code=exc.status)
        return JSONResponse(record, status_code=status)

    return [
        Route("/", overview),
        Route("/stations", stations),
        Route("/stations/{station_id}", station),
        Route("/stations/{station_id}/commands/{action}", command, methods=["POST"]),
    ]


def _error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message}}


async def _reservations(s: ConsoleServices, station_id: str) -> list[dict[str, Any]]:
    items, _ = await s.operations.reservations(station_id=station_id, status=None, limit=20)
    return items
