"""Operations state: reservations, per-station smart charging/configuration/jobs, and local-list sync."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.command_status import HTTP_STATUS
from csms.api.errors import ApiError
from csms.api.models.fields import INT32_MAX
from csms.api.responses import JsonResponse
from csms.api.validation import json_body, page_limit, parse_id, path_station_id
from csms.authorization import IdTagStore
from csms.commands import CommandRejected, CommandService
from csms.operations import OperationsViews
from csms.stations import StationRegistry

MAX_LOCAL_LIST = 10_000
# The ReserveNow answers (Active: accepted), then what ended it; Removed is 2.0.1's ReservationStatusUpdate.
RESERVATION_STATUSES = (
    "Active",
    "Faulted",
    "Occupied",
    "Rejected",
    "Unavailable",
    "Cancelled",
    "Used",
    "Expired",
    "Removed",
)


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
        auth.require(request, "read")
        status = request.query_params.get("status")
        if status is not None and status not in RESERVATION_STATUSES:
            raise ApiError(400, "bad_request", f"status must be one of {', '.join(sorted(RESERVATION_STATUSES))}")
        items, next_before = await views.reservations(
            station_id=request.query_params.get("station_id"),
            status=status,
            limit=page_limit(request),
            before=parse_id(request.query_params.get("before"), "before"),
        )
        return JsonResponse({"items": items, "next": next_before})

    async def get_reservation(request: Request) -> Response:
        """By the OCPP reservationId; operators may give two stations the same one, then station_id decides."""
        auth.require(request, "read")
        raw = str(request.path_params["reservation_id"])
        reservation_id = parse_id(raw, "a reservation id", maximum=INT32_MAX)
        assert reservation_id is not None
        found = await views.reservations_with_id(reservation_id, request.query_params.get("station_id"))
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
        auth.require(request, "read")
        return JsonResponse(await views.station_state(await known_station(request)))

    async def sync_local_list(request: Request) -> Response:
        """Builds SendLocalList from the id-tag store (Full, or Differential since the last accepted sync) in the
        station's version: 1.6 idTag entries, 2.0.1 typed idToken entries."""
        role = auth.require(request, "operator")
        station_id = await known_station(request)
        body = await json_body(request)
        update_type = body.get("update_type", "Full")
        if update_type not in ("Full", "Differential") or set(body) - {"update_type"}:
            raise ApiError(422, "invalid", 'body is {"update_type": "Full" | "Differential"}')
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
            record = await commands.submit(station_id, "SendLocalList", payload, f"token:{role}", protocol=protocol)
        except CommandRejected as exc:
            raise ApiError(422, "invalid", exc.message, exc.details) from None
        return JsonResponse(record, status_code=HTTP_STATUS[record["status"]])

    return [
        Route("/api/v1/reservations", list_reservations),
        Route("/api/v1/reservations/{reservation_id}", get_reservation),
        Route("/api/v1/stations/{station_id}/operations", station_operations),
        Route("/api/v1/stations/{station_id}/local-list", sync_local_list, methods=["POST"]),
    ]
