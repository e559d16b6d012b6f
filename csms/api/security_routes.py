"""Station security: password rotation, raising a profile through the station, and the security event log."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.command_status import HTTP_STATUS
from csms.api.contract import Answer, Operation, query, route
from csms.api.errors import ApiError
from csms.api.models.fields import INT64_MAX
from csms.api.models.security import (
    CertificateList,
    PasswordRotation,
    ProfileChange,
    ProfileChangeBody,
    SecurityEventPage,
    SecurityEventQuery,
)
from csms.api.responses import JsonResponse
from csms.api.validation import bad, json_body, parse, path_station_id
from csms.central_system.network_profile import ProfileChangeUnsupported
from csms.central_system.security_operations import SecurityOperations
from csms.stations import SecurityStore

FINGERPRINT = re.compile(r"[0-9a-f]{64}")
TAG = "security"
# A relayed command that did not succeed: the command record tells which outcome.
RELAYED = {
    409: Answer(None, "offline, or the station refused (the command record tells which)."),
    502: Answer(None, "call_error: the station answered with a CallError."),
    503: Answer(None, "unknown_outcome or failed; retry later."),
    504: Answer(None, "timeout: no answer from the station in time."),
}
ROTATE = Operation(
    "POST", "/api/v1/stations/{station_id}/rotate-password", "rotatePassword", TAG,
    "Give the station a new random password (1.6 ChangeConfiguration AuthorizationKey)", "operator",
    {200: Answer(PasswordRotation, "The station accepted."), **RELAYED}, (400, 404), path_params=("StationId",),
)  # fmt: skip
RAISE = Operation(
    "POST", "/api/v1/stations/{station_id}/security-profile", "raiseSecurityProfile", TAG,
    "Have the station switch to a higher security profile (1.6: ChangeConfiguration SecurityProfile; 2.0.1:"
    " SetNetworkProfile to CSMS_OCPP_PUBLIC_URL, SetVariables NetworkConfigurationPriority, Reset OnIdle), stored"
    " once it accepted every step", "operator",
    {200: Answer(ProfileChange, "The station accepted."), **RELAYED}, (400, 404, 413, 422),
    path_params=("StationId",), body=ProfileChangeBody, body_required=True,
)  # fmt: skip
CERTIFICATES = Operation(
    "GET", "/api/v1/stations/{station_id}/certificates", "listStationCertificates", TAG,
    "The station's certificate inventory, with expiry", "read",
    {200: Answer(CertificateList, "Newest expiry first.")}, (400, 404), path_params=("StationId",),
)  # fmt: skip
REVOKE = Operation(
    "DELETE", "/api/v1/stations/{station_id}/certificates/{fingerprint}", "revokeStationCertificate", TAG,
    "Delete a certificate from the inventory and refuse it from now on (revocation)", "operator",
    {204: Answer(None, "Revoked.", None)}, (400, 404), path_params=("StationId", "Fingerprint"),
)  # fmt: skip
EVENTS = Operation(
    "GET", "/api/v1/security-events", "listSecurityEvents", TAG,
    "Security events from stations (SecurityEventNotification) and from the CSMS (refused downgrades, certificate"
    " failures, failed and throttled authentication, rotations)", "read",
    {200: Answer(SecurityEventPage, "A page.")}, (400,), query=SecurityEventQuery,
)  # fmt: skip
OPERATIONS = (ROTATE, RAISE, CERTIFICATES, REVOKE, EVENTS)


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
        station_id = path_station_id(request)
        state = await known_state(station_id)
        if not state["has_password"]:
            raise ApiError(409, "conflict", f"station {station_id} has no password to rotate; set one with PUT")
        outcome = await operations.rotate_password(station_id, request.state.actor)
        return answer(outcome.accepted, outcome.command, station_id=station_id)

    async def raise_profile(request: Request) -> Response:
        station_id = path_station_id(request)
        profile = parse(ProfileChangeBody, await json_body(request)).security_profile
        state = await known_state(station_id)
        if profile in (1, 2) and not state["has_password"]:
            raise bad(f"security profile {profile} needs a station password; set one with PUT first")
        try:
            current = int(state["security_profile"])  # type: ignore[call-overload]
            outcome = await operations.raise_profile(station_id, profile, request.state.actor, current)
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
        q = query(request, SecurityEventQuery)
        items = await store.events(
            station_id=q.station_id,
            origin=q.origin,
            event_type=q.type,
            before=INT64_MAX if q.before is None else q.before,
            limit=q.limit,
        )
        next_before = items[-1]["id"] if len(items) == q.limit else None
        return JsonResponse({"items": items, "next": next_before})

    async def list_certificates(request: Request) -> Response:
        station_id = path_station_id(request)
        if await store.security_state(station_id) is None:
            raise ApiError(404, "not_found", f"station {station_id} is not registered")
        return JsonResponse({"items": await store.certificates(station_id)})

    async def delete_certificate(request: Request) -> Response:
        station_id = path_station_id(request)
        fingerprint = str(request.path_params["fingerprint"]).lower()
        if not FINGERPRINT.fullmatch(fingerprint):
            raise ApiError(400, "bad_request", "a certificate is named by its SHA-256 fingerprint (64 hex digits)")
        if await store.security_state(station_id) is None:
            raise ApiError(404, "not_found", f"station {station_id} is not registered")
        await store.revoke(station_id, fingerprint)
        return Response(status_code=204)

    return [
        route(CERTIFICATES, auth, list_certificates),
        route(REVOKE, auth, delete_certificate),
        route(ROTATE, auth, rotate_password),
        route(RAISE, auth, raise_profile),
        route(EVENTS, auth, list_events),
    ]
