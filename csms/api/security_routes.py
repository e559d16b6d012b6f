"""Station security: password rotation, raising a profile through the station, and the security event log."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.command_status import HTTP_STATUS
from csms.api.errors import ApiError
from csms.api.models.fields import INT64_MAX
from csms.api.responses import JsonResponse
from csms.api.validation import bad, json_body, page_limit, parse_id, path_station_id, reject_unknown
from csms.central_system.network_profile import ProfileChangeUnsupported
from csms.central_system.security_operations import SecurityOperations
from csms.stations import PROFILES, SecurityStore

ORIGINS = ("station", "csms")
FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def security_routes(auth: TokenAuth, store: SecurityStore, operations: SecurityOperations) -> list[Route]:
    async def known_state(station_id: str) -> dict[str, object]:
        state = await store.security_state(station_id)
        if state is None:
            raise ApiError(404, "not_found", f"station {station_id} is not registered")
        return state

    def answer(outcome_accepted: bool, command: dict[str, object], **extra: object) -> Response:
        if outcome_accepted:
            status = 200
        elif command.get("status") == "completed":
            status = 409  # the station answered, and refused
        else:
            status = HTTP_STATUS[str(command.get("status"))]
        return JsonResponse({"accepted": outcome_accepted, **extra, "command": command}, status_code=status)

    async def rotate_password(request: Request) -> Response:
        role = auth.require(request, "operator")
        station_id = path_station_id(request)
        state = await known_state(station_id)
        if not state["has_password"]:
            raise ApiError(409, "conflict", f"station {station_id} has no password to rotate; set one with PUT")
        outcome = await operations.rotate_password(station_id, f"token:{role}")
        return answer(outcome.accepted, outcome.command, station_id=station_id)

    async def raise_profile(request: Request) -> Response:
        role = auth.require(request, "operator")
        station_id = path_station_id(request)
        body = await json_body(request)
        reject_unknown(body, {"security_profile"})
        profile = body.get("security_profile")
        if not isinstance(profile, int) or isinstance(profile, bool) or profile not in PROFILES[1:]:
            raise bad("security_profile must be 1, 2 or 3")
        state = await known_state(station_id)
        if profile in (1, 2) and not state["has_password"]:
            raise bad(f"security profile {profile} needs a station password; set one with PUT first")
        try:
            current = int(state["security_profile"])  # type: ignore[call-overload]
            outcome = await operations.raise_profile(station_id, profile, f"token:{role}", current)
        except ProfileChangeUnsupported:
            raise ApiError(409, "conflict", ProfileChangeUnsupported.__doc__ or "") from None
        return answer(
            outcome.accepted,
            outcome.command,
            station_id=station_id,
            security_profile=profile,
            failed_step=outcome.failed_step,
        )

    async def list_events(request: Request) -> Response:
        auth.require(request, "read")
        q = request.query_params
        origin = q.get("origin")
        if origin is not None and origin not in ORIGINS:
            raise ApiError(400, "bad_request", "origin must be station or csms")
        limit = page_limit(request)
        before = parse_id(q.get("before"), "before")
        items = await store.events(
            station_id=q.get("station_id"),
            origin=origin,
            event_type=q.get("type"),
            before=INT64_MAX if before is None else before,
            limit=limit,
        )
        next_before = items[-1]["id"] if len(items) == limit else None
        return JsonResponse({"items": items, "next": next_before})

    async def list_certificates(request: Request) -> Response:
        auth.require(request, "read")
        station_id = path_station_id(request)
        if await store.security_state(station_id) is None:
            raise ApiError(404, "not_found", f"station {station_id} is not registered")
        return JsonResponse({"items": await store.certificates(station_id)})

    async def delete_certificate(request: Request) -> Response:
        auth.require(request, "operator")
        station_id = path_station_id(request)
        fingerprint = str(request.path_params["fingerprint"]).lower()
        if not FINGERPRINT.fullmatch(fingerprint):
            raise ApiError(400, "bad_request", "a certificate is named by its SHA-256 fingerprint (64 hex digits)")
        if await store.security_state(station_id) is None:
            raise ApiError(404, "not_found", f"station {station_id} is not registered")
        await store.revoke(station_id, fingerprint)
        return Response(status_code=204)

    return [
        Route("/api/v1/stations/{station_id}/certificates", list_certificates),
        Route("/api/v1/stations/{station_id}/certificates/{fingerprint}", delete_certificate, methods=["DELETE"]),
        Route("/api/v1/stations/{station_id}/rotate-password", rotate_password, methods=["POST"]),
        Route("/api/v1/stations/{station_id}/security-profile", raise_profile, methods=["POST"]),
        Route("/api/v1/security-events", list_events),
    ]
