"""Operator commands: POST /api/v1/stations/{id}/commands/{Action}, and the audit trail.

The body is checked against the OCPP version the station negotiated on its latest connection (a station that
never connected: any version whose catalogue has the action), before the station is looked up (404).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.command_payloads import CommandPayloads
from csms.api.command_status import HTTP_STATUS
from csms.api.contract import Answer, Operation, query, route
from csms.api.errors import ApiError
from csms.api.models import queries
from csms.api.models.commands import CommandPage, CommandRecord
from csms.api.responses import JsonResponse
from csms.api.validation import json_body, parse_id, path_station_id
from csms.commands import Actor, CommandRejected, CommandService
from csms.stations import StationRegistry

Payload = dict[str, Any]

# Configuration keys the CSMS manages itself: a raw command would desynchronise the stored credentials/profile
# (and record the new password in the audit trail).
MANAGED_KEYS = {
    "AuthorizationKey": "POST /api/v1/stations/{id}/rotate-password",
    "BasicAuthPassword": "POST /api/v1/stations/{id}/rotate-password",
    "SecurityProfile": "POST /api/v1/stations/{id}/security-profile",
}


def _managed_variable(action: str, payload: Payload) -> str | None:
    """2.0.1: the first managed variable a SetVariables would set (the password, the profile)."""
    if action != "SetVariables" or not isinstance(payload.get("setVariableData"), list):
        return None
    for item in payload["setVariableData"]:
        variable = item.get("variable") if isinstance(item, dict) else None
        name = variable.get("name") if isinstance(variable, dict) else None
        if isinstance(name, str) and name in MANAGED_KEYS:
            return name
    return None


LIST = Operation(
    "GET", "/api/v1/commands", "listCommands", "commands", "The command audit trail", "read",
    {200: Answer(CommandPage, "A page.")}, (400,), query=queries.CommandQuery,
)  # fmt: skip
GET = Operation(
    "GET", "/api/v1/commands/{command_id}", "getCommand", "commands", "One command (poll an async command here)",
    "read", {200: Answer(CommandRecord, "The command.")}, (400, 404), path_params=("CommandId",),
)  # fmt: skip
OPERATIONS = (LIST, GET)


def command_routes(
    auth: TokenAuth, commands: CommandService, registry: StationRegistry, payloads: CommandPayloads
) -> list[Route]:
    async def send_command(request: Request) -> Response:
        actor = auth.require(request, "operator")
        station_id = path_station_id(request)
        action = str(request.path_params["action"])
        body = await json_body(request)
        q = query(request, queries.CommandSendQuery)
        record, status = await submit_command(
            commands,
            registry,
            payloads,
            station_id,
            action,
            body,
            actor,
            is_async=q.is_async,
            timeout=q.timeout,
        )
        return JsonResponse(record, status_code=status)

    async def get_command(request: Request) -> Response:
        raw = str(request.path_params["command_id"])
        command_id = parse_id(raw, "command id")
        assert command_id is not None
        record = await commands.get(command_id)
        if record is None:
            raise ApiError(404, "not_found", f"command {raw} does not exist")
        return JsonResponse(record)

    async def list_commands(request: Request) -> Response:
        q = query(request, queries.CommandQuery)
        items = await commands.page(
            station_id=q.station_id,
            action=q.action,
            status=q.status,
            since=q.since,
            limit=q.limit,
            before_id=q.before,
        )
        return JsonResponse({"items": items, "next": items[-1]["id"] if len(items) == q.limit else None})

    return [
        Route("/api/v1/stations/{station_id}/commands/{action}", send_command, methods=["POST"]),
        route(LIST, auth, list_commands),
        route(GET, auth, get_command),
    ]


async def submit_command(
    commands: CommandService,
    registry: StationRegistry,
    payloads: CommandPayloads,
    station_id: str,
    action: str,
    body: Payload,
    requested_by: Actor,
    *,
    is_async: bool = False,
    timeout: float | None = None,
) -> tuple[Payload, int]:
    """Fill in, validate (422), check the station (404) and run a command: the one path for the REST API and the
    console. Returns the command record and its HTTP status."""
    protocol = await registry.protocol_of(station_id)  # None: never connected (or not registered)
    payload = await payloads.complete(action, body, protocol)
    key = payload.get("key") if action == "ChangeConfiguration" else _managed_variable(action, payload)
    if isinstance(key, str) and key in MANAGED_KEYS:
        raise ApiError(422, "invalid", f"{key} is changed through {MANAGED_KEYS[key]}, which keeps it consistent")
    try:
        protocol = commands.validate(action, payload, protocol)
    except CommandRejected as exc:
        raise ApiError(422, "invalid", exc.message, exc.details) from None
    known, _ = await registry.credentials(station_id)
    if not known:
        raise ApiError(404, "not_found", f"station {station_id} is not registered")
    record = await commands.submit(
        station_id, action, payload, requested_by, protocol=protocol, wait=not is_async, timeout=timeout
    )
    return record, 202 if is_async and record["status"] == "pending" else HTTP_STATUS[record["status"]]
