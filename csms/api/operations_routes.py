"""Operations state: reservations, per-station smart charging/configuration/jobs, and local-list sync."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.command_status import HTTP_STATUS
from csms.api.contract import Answer, Operation, command_answers, query, route
from csms.api.errors import ApiError
from csms.api.models.bodies import LocalListSync
from csms.api.models.fields import INT32_MAX
from csms.api.models.operations import (
    Reservation,
    ReservationLookup,
    ReservationPage,
    ReservationQuery,
    StationOperations,
)
from csms.api.responses import JsonResponse
from csms.api.validation import json_body, parse, parse_id, path_station_id
from csms.authorization import IdTagStore
from csms.commands import CommandRejected, CommandService
from csms.operations import OperationsViews
from csms.stations import StationRegistry

MAX_LOCAL_LIST = 10_000
TAG = "operations"
RESERVATIONS = Operation(
    "GET", "/api/v1/reservations", "listReservations", TAG, "List reservations", "read",
    {200: Answer(ReservationPage, "A page.")}, (400,), query=ReservationQuery,
)  # fmt: skip
RESERVATION = Operation(
    "GET", "/api/v1/reservations/{reservation_id}", "getReservation", TAG,
    "One reservation by its OCPP reservationId", "read", {200: Answer(Reservation, "The reservation.")}, (400, 404),
    conflict="ambiguous: operators gave several stations this reservationId; `details.stations` lists them,"
    " `station_id` picks one.",
    path_params=("ReservationId",), query=ReservationLookup,
)  # fmt: skip
STATE = Operation(
    "GET", "/api/v1/stations/{station_id}/operations", "getStationOperations", TAG,
    "What operators set up on a station: profiles, configuration, availability, jobs, local list", "read",
    {200: Answer(StationOperations, "The station's operations state.")}, (400, 404), path_params=("StationId",),
)  # fmt: skip
LOCAL_LIST = Operation(
    "POST", "/api/v1/stations/{station_id}/local-list", "syncLocalList", TAG,
    "Send the id-tag store as the station's local list (SendLocalList, Full or Differential; 2.0.1 stations get"
    " typed idToken entries, an untyped tag as ISO14443)", "operator",
    command_answers("CommandRecord.SendLocalList"), (400, 404, 413, 422), path_params=("StationId",),
    body=LocalListSync,
)  # fmt: skip
OPERATIONS = (RESERVATIONS, RESERVATION, STATE, LOCAL_LIST)


def operations_routes(
    auth: TokenAuth,
    views: OperationsViews,
    registry: StationRegistry,
    id_tags: IdTagStore,
    commands: CommandService,
) -> list[Route]:
    async def known_station(request: Request) -> str:
        station_id = path_station_id(request)
        known, _ = await registry.credentials(station_id)
        if not known:
            raise ApiError(404, "not_found", f"station {station_id} is not registered")
        return station_id

    async def list_reservations(request: Request) -> Response:
        q = query(request, ReservationQuery)
        items, next_before = await views.reservations(
            station_id=q.station_id, status=q.status, limit=q.limit, before=q.before
        )
        return JsonResponse({"items": items, "next": next_before})

    async def get_reservation(request: Request) -> Response:
        """By the OCPP reservationId; operators may give two stations the same one, then station_id decides."""
        raw = str(request.path_params["reservation_id"])
        reservation_id = parse_id(raw, "a reservation id", maximum=INT32_MAX)
        assert reservation_id is not None
        found = await views.reservations_with_id(reservation_id, query(request, ReservationLookup).station_id)
        if not found:
            raise ApiError(404, "not_found", f"reservation {raw} does not exist")
        if len(found) > 1:
            stations = [r["station_id"] for r in found]
            raise ApiError(
                409,
                "ambiguous",
                f"reservation {raw} exists on several stations; add ?station_id= (one of {', '.join(stations)})",
                {"stations": stations},
            )
        return JsonResponse(found[0])

    async def station_operations(request: Request) -> Response:
        return JsonResponse(await views.station_state(await known_station(request)))

    async def sync_local_list(request: Request) -> Response:
        """Builds SendLocalList from the id-tag store (Full, or Differential since the last accepted sync) in the
        station's version: 1.6 idTag entries, 2.0.1 typed idToken entries."""
        station_id = await known_station(request)
        update_type = parse(LocalListSync, await json_body(request)).update_type
        since = await views.last_list_sync(station_id) if update_type == "Differential" else None
        protocol = await registry.protocol_of(station_id)
        entries = await id_tags.local_list_entries(
            changed_since=since, limit=MAX_LOCAL_LIST, protocol=protocol or "ocpp1.6"
        )
        version = await views.local_list_version(station_id) + 1
        if protocol == "ocpp2.0.1":  # an empty list is left out there (minItems 1)
            payload: dict[str, Any] = {"versionNumber": version, "updateType": update_type}
            payload |= {"localAuthorizationList": entries} if entries else {}
        else:
            payload = {"listVersion": version, "updateType": update_type, "localAuthorizationList": entries}
        try:
            record = await commands.submit(station_id, "SendLocalList", payload, request.state.actor, protocol=protocol)
        except CommandRejected as exc:
            raise ApiError(422, "invalid", exc.message, exc.details) from None
        return JsonResponse(record, status_code=HTTP_STATUS[record["status"]])

    return [
        route(RESERVATIONS, auth, list_reservations),
        route(RESERVATION, auth, get_reservation),
        route(STATE, auth, station_operations),
        route(LOCAL_LIST, auth, sync_local_list),
    ]
