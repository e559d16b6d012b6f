"""An OCPP 2.0.1 station's device model: GET /api/v1/stations/{id}/variables (filterable, paged) and /reports."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.errors import ApiError
from csms.api.responses import JsonResponse
from csms.api.validation import page_limit, parse_id, path_station_id
from csms.devicemodel import DeviceModelViews
from csms.stations import StationRegistry

NAME_MAX = 50  # OCPP 2.0.1 component and variable names are identifierString(50)


def devicemodel_routes(auth: TokenAuth, views: DeviceModelViews, registry: StationRegistry) -> list[Route]:
    async def known_station(request: Request) -> str:
        station_id = path_station_id(request)
        known, _ = await registry.credentials(station_id)
        if not known:
            raise ApiError(404, "not_found", f"station {station_id} is not registered")
        return station_id

    def name(request: Request, key: str) -> str | None:
        value = request.query_params.get(key)
        if value is not None and not 1 <= len(value) <= NAME_MAX:
            raise ApiError(400, "bad_request", f"{key} must be a name of 1-{NAME_MAX} characters")
        return value

    async def variables(request: Request) -> Response:
        auth.require(request, "read")
        component, variable = name(request, "component"), name(request, "variable")
        limit = page_limit(request)
        after = parse_id(request.query_params.get("after"), "after")
        items, next_after = await views.variables(
            await known_station(request), component=component, variable=variable, limit=limit, after=after
        )
        return JsonResponse({"items": items, "next": next_after})

    async def reports(request: Request) -> Response:
        auth.require(request, "read")
        return JsonResponse({"items": await views.reports(await known_station(request))})

    return [
        Route("/api/v1/stations/{station_id}/variables", variables),
        Route("/api/v1/stations/{station_id}/reports", reports),
    ]
