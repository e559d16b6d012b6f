"""Replica-to-replica endpoints: never reachable without the shared internal secret."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cluster import ShedOrder
from csms.api.errors import ApiError
from csms.api.models.fields import INT32_MAX
from csms.api.responses import JsonResponse
from csms.api.validation import int_field, json_body
from csms.commands import MAX_BATCH, PROTOCOLS, SECRET_HEADER, CommandService, ExecuteRequest, Guard, secret_matches
from csms.shedding import Shed

MAX_TIMEOUT = 3600.0  # seconds; a forwarded command never waits longer than the API allows


def _optional_count(body: dict[str, object], key: str) -> int:
    return int_field(body, key, maximum=INT32_MAX) if key in body else 0


def _guard(body: dict[str, object]) -> Guard | None:
    """The command's fence, if it carries one (a replica from before guards sends none)."""
    raw = body.get("guard")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("key"), str):
        raise ApiError(400, "bad_request", "guard must be an object with a string key and an integer token")
    return Guard(raw["key"], int_field(raw, "token"))


def _execute_request(body: dict[str, object]) -> ExecuteRequest:
    station_id, action, payload, timeout = (body.get(k) for k in ("station_id", "action", "payload", "timeout"))
    if not (isinstance(station_id, str) and isinstance(action, str) and isinstance(payload, dict)):
        raise ApiError(400, "bad_request", "station_id and action must be strings, payload an object")
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= MAX_TIMEOUT:
        raise ApiError(400, "bad_request", f"timeout must be a number of seconds, 0-{MAX_TIMEOUT}")
    protocol = body.get("protocol", "ocpp1.6")  # a replica from before OCPP 2.0.1 sends none
    if protocol not in PROTOCOLS:
        raise ApiError(400, "bad_request", f"protocol must be one of {', '.join(PROTOCOLS)}")
    command_id = int_field(body, "command_id")
    return ExecuteRequest(command_id, station_id, action, payload, float(timeout), protocol, _guard(body))


def internal_routes(secret: str, commands: CommandService, shed: Shed) -> list[Route]:
    def check(request: Request) -> None:
        if not secret_matches(secret, request.headers.get(SECRET_HEADER)):
            raise ApiError(403, "forbidden", "internal endpoint: missing or wrong replica secret")

    async def execute(request: Request) -> Response:
        check(request)
        result = await commands.execute_here(_execute_request(await json_body(request)))
        return JsonResponse(result.as_json())

    async def execute_batch(request: Request) -> Response:
        check(request)
        raw = (await json_body(request)).get("commands")
        if not isinstance(raw, list) or not 0 < len(raw) <= MAX_BATCH or not all(isinstance(c, dict) for c in raw):
            raise ApiError(400, "bad_request", f"commands must be a list of 1-{MAX_BATCH} command objects")
        results = await commands.execute_batch_here([_execute_request(c) for c in raw])
        return JsonResponse({"results": [r.as_json() for r in results]})

    async def shed_stations(request: Request) -> Response:
        check(request)
        body = await json_body(request)
        hold = body.get("hold", 0)
        if not isinstance(hold, int | float) or isinstance(hold, bool) or not 0 <= hold <= 3600:
            raise ApiError(400, "bad_request", "hold must be a number of seconds, 0-3600")
        count = int_field(body, "count", maximum=INT32_MAX)
        order = ShedOrder(count, _optional_count(body, "target"), _optional_count(body, "may_interrupt"))
        return JsonResponse({"shed": await shed(order, float(hold))})

    return [
        Route("/internal/v1/commands/execute", execute, methods=["POST"]),
        Route("/internal/v1/commands/execute-batch", execute_batch, methods=["POST"]),
        Route("/internal/v1/shed", shed_stations, methods=["POST"]),
    ]
