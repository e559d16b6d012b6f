"""Replica-to-replica endpoints: never reachable without the shared internal secret."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from csms.api.errors import ApiError
from csms.api.validation import json_body
from csms.commands import SECRET_HEADER, CommandService, ExecuteRequest, secret_matches

Shed = Callable[[int], Awaitable[int]]


def internal_routes(secret: str, commands: CommandService, shed: Shed) -> list[Route]:
    def check(request: Request) -> None:
        if not secret_matches(secret, request.headers.get(SECRET_HEADER)):
            raise ApiError(403, "forbidden", "internal endpoint: missing or wrong replica secret")

    async def execute(request: Request) -> Response:
        check(request)
        body = await json_body(request)
        try:
            command = ExecuteRequest(
                int(body["command_id"]),
                str(body["station_id"]),
                str(body["action"]),
                dict(body["payload"]),
                float(body["timeout"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(400, "bad_request", f"malformed execute request: {exc!r}") from None
        result = await commands.execute_here(command)
        return JSONResponse(result.as_json())

    async def shed_stations(request: Request) -> Response:
        check(request)
        body = await json_body(request)
        count = body.get("count")
        if not isinstance(count, int) or count < 0:
            raise ApiError(400, "bad_request", "count must be a non-negative integer")
        return JSONResponse({"shed": await shed(count)})

    return [
        Route("/internal/v1/commands/execute", execute, methods=["POST"]),
        Route("/internal/v1/shed", shed_stations, methods=["POST"]),
    ]
