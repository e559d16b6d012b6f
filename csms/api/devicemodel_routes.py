"""An OCPP 2.0.1 station's device model: GET /api/v1/stations/{id}/variables (filterable, paged) and /reports."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.contract import Answer, Operation, query, route
from csms.api.errors import ApiError
from csms.api.models.devicemodel import DeviceModelReports, DeviceVariablePage
from csms.api.models.queries import DeviceVariableQuery
from csms.api.responses import JsonResponse
from csms.api.validation import path_station_id
from csms.devicemodel import DeviceModelViews
from csms.stations import StationRegistry

TAG = "device-model"
VARIABLES = Operation(
    "GET", "/api/v1/stations/{station_id}/variables", "listStationVariables", TAG,
    "An OCPP 2.0.1 station's device model: its components' variables, attributes and characteristics", "read",
    {200: Answer(DeviceVariablePage, "A page.")}, (400, 404), path_params=("StationId",),
    query=DeviceVariableQuery,
)  # fmt: skip
REPORTS = Operation(
    "GET", "/api/v1/stations/{station_id}/reports", "listStationReports", TAG,
    "The latest 20 device-model reports of a station (GetBaseReport/GetReport and their parts)", "read",
    {200: Answer(DeviceModelReports, "Newest request first.")}, (400, 404), path_params=("StationId",),
)  # fmt: skip
OPERATIONS = (VARIABLES, REPORTS)


def devicemodel_routes(auth: TokenAuth, views: DeviceModelViews, registry: StationRegistry) -> list[Route]:
    async def known_station(request: Request) -> str:
        station_id = path_station_id(request)
        known, _ = await registry.credentials(station_id)
        if not known:
            raise ApiError(404, "not_found", f"station {station_id} is not registered")
        return station_id

    async def variables(request: Request) -> Response:
        q = query(request, DeviceVariableQuery)
        items, next_after = await views.variables(
            await known_station(request), component=q.component, variable=q.variable, limit=q.limit, after=q.after
        )
        return JsonResponse({"items": items, "next": next_after})

    async def reports(request: Request) -> Response:
        return JsonResponse({"items": await views.reports(await known_station(request))})

    return [route(VARIABLES, auth, variables), route(REPORTS, auth, reports)]
