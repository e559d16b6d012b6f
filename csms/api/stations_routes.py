"""Stations: list, one with its connectors and open transactions, register/change, forget, and its reports."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cluster import Coordinator
from csms.api.auth import TokenAuth
from csms.api.contract import Answer, Operation, query, route
from csms.api.errors import ApiError
from csms.api.models import bodies, queries, resources
from csms.api.presenters import with_owners
from csms.api.responses import JsonResponse
from csms.api.validation import json_body, parse, path_station_id
from csms.stations import StationRegistry, hash_password
from csms.transactions import TransactionLedger

PAGE = Answer(resources.StationPage, "A page.")
LIST = Operation(
    "GET", "/api/v1/stations", "listStations", "stations", "List stations", "read", {200: PAGE}, (400,),
    query=queries.AfterPage,
)  # fmt: skip
GET = Operation(
    "GET", "/api/v1/stations/{station_id}", "getStation", "stations",
    "A station with its connectors, open transactions and latest notifications", "read",
    {200: Answer(resources.StationDetail, "The station.")}, (400, 404), path_params=("StationId",),
)  # fmt: skip
PUT = Operation(
    "PUT", "/api/v1/stations/{station_id}", "putStation", "stations", "Register a station or change its settings",
    "operator",
    {
        200: Answer(resources.StationWithConnectors, "Updated."),
        201: Answer(resources.StationWithConnectors, "Registered."),
    },
    (400, 413, 422), path_params=("StationId",), body=bodies.StationPut,
)  # fmt: skip
DELETE = Operation(
    "DELETE", "/api/v1/stations/{station_id}", "deleteStation", "stations", "Forget a station", "operator",
    {204: Answer(None, "Deleted.", None)}, (400, 404), path_params=("StationId",),
)  # fmt: skip
EVENTS = Operation(
    "GET", "/api/v1/stations/{station_id}/events", "listStationEvents", "stations",
    "What a station reported beyond transactions (2.0.1 Notify*, security events, certificates), each kept once",
    "read", {200: Answer(resources.StationEventPage, "A page.")}, (400, 404), path_params=("StationId",),
    query=queries.StationEventQuery,
)  # fmt: skip
OPERATIONS = (LIST, GET, PUT, DELETE, EVENTS)


def station_routes(
    auth: TokenAuth,
    registry: StationRegistry,
    ledger: TransactionLedger,
    coordinator: Coordinator,
    password_iterations: int,
) -> list[Route]:
    async def list_stations(request: Request) -> Response:
        q = query(request, queries.AfterPage)
        items = await with_owners(coordinator, await registry.page(limit=q.limit, after=q.after))
        return JsonResponse({"items": items, "next": items[-1]["id"] if len(items) == q.limit else None})

    async def get_station(request: Request) -> Response:
        station_id = path_station_id(request)
        station = await registry.get(station_id)
        if station is None:
            raise ApiError(404, "not_found", f"station {station_id} is not registered")
        [station] = await with_owners(coordinator, [station])
        station.update(await registry.security.security_state(station_id) or {})
        station["open_transactions"] = await ledger.open_transactions(station_id)
        station["notifications"] = await registry.notifications(station_id, limit=20)
        return JsonResponse(station)

    async def station_events(request: Request) -> Response:
        """What a station reported beyond transactions (2.0.1 Notify*, security events, ...), newest first."""
        station_id = path_station_id(request)
        q = query(request, queries.StationEventQuery)
        items = await registry.events(station_id, action=q.action, limit=q.limit, before_id=q.before)
        return JsonResponse({"items": items, "next": items[-1]["id"] if len(items) == q.limit else None})

    async def put_station(request: Request) -> Response:
        station_id = path_station_id(request)
        body = parse(bodies.StationPut, await json_body(request))
        given = body.model_fields_set
        password, profile = body.password, body.security_profile
        password_hash = await hash_password(password, password_iterations) if password else None
        if profile in (1, 2) and not password:
            state = await registry.security.security_state(station_id)
            if not (state and state["has_password"]) or ("password" in given and password is None):
                raise ApiError(422, "invalid", f"security_profile {profile} needs a password (Basic auth)")
        created = await registry.put(
            station_id,
            password_hash=password_hash,
            set_password="password" in given,
            boot_status=body.boot_status,
            set_boot_status="boot_status" in given,
            description=None if "description" not in given else body.description or "",
        )
        if "security_profile" in given:
            await registry.security.set_profile(station_id, profile)
        station: dict[str, Any] | None = await registry.get(station_id)
        assert station is not None
        [station] = await with_owners(coordinator, [station])
        return JsonResponse(station, status_code=201 if created else 200)

    async def delete_station(request: Request) -> Response:
        station_id = path_station_id(request)
        if not await registry.delete(station_id):
            raise ApiError(404, "not_found", f"station {station_id} is not registered")
        return Response(status_code=204)

    return [
        route(LIST, auth, list_stations),
        route(GET, auth, get_station),
        route(PUT, auth, put_station),
        route(DELETE, auth, delete_station),
        route(EVENTS, auth, station_events),
    ]
