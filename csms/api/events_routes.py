"""The event stream for consumers: pull pages from a durable cursor, tail live (SSE), read the schemas;
and the exporters' state: cursors, lag, dead letters and their replay."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import trio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.contract import Answer, Operation, query, route
from csms.api.errors import ApiError
from csms.api.models.events import (
    DeadLetterPage,
    DeadLetterQuery,
    EventPage,
    EventQuery,
    EventSchemas,
    ExportSinks,
    ReplayRequest,
    ReplayResult,
)
from csms.api.responses import JsonResponse
from csms.api.validation import json_body, parse
from csms.outbox import SCHEMAS, BadCursor, Cursor, ExportStore, OutboxReader, event_types, full_type

SSE_POLL = 0.5  # seconds between reads while a live tail is caught up
SSE_KEEPALIVE = 15.0  # a comment line this often keeps proxies from closing an idle stream
SSE_MAX_SECONDS = 3600.0  # a stream ends after this; the client reconnects with Last-Event-ID (bounded work)
_SINK_NAME = 100


def _cursor(request: Request, raw: str | None) -> Cursor:
    try:
        return Cursor.parse(raw or request.headers.get("last-event-id"))
    except BadCursor as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


def _sink(request: Request) -> str:
    sink = request.path_params["sink"]
    if not 1 <= len(sink) <= _SINK_NAME:
        raise ApiError(400, "bad_request", f"a sink name is 1-{_SINK_NAME} characters")
    return str(sink)


TAG = "events"
LIST = Operation(
    "GET", "/api/v1/events", "listEvents", TAG,
    "Read the event stream from a durable cursor (JSON pages, or a live SSE tail)", "read",
    {
        200: Answer(
            EventPage,
            "Events after the cursor, oldest first; `next` continues (also when empty).",
            stream="With `Accept: text/event-stream`: a live tail, one `id: <cursor>` + `data: <CloudEvent>` per"
            " event; reconnect with Last-Event-ID.",
        )
    },
    (400,), query=EventQuery,
)  # fmt: skip
SCHEMAS_OP = Operation(
    "GET", "/api/v1/events/schemas", "eventSchemas", TAG, "The JSON Schema of every event type", "read",
    {200: Answer(EventSchemas, "By type.")},
)  # fmt: skip
EXPORTS = Operation(
    "GET", "/api/v1/exports", "listExports", TAG, "Every sink's durable cursor, lag and dead letters", "read",
    {200: Answer(ExportSinks, "The sinks that have exported.")},
)  # fmt: skip
DEAD_LETTERS = Operation(
    "GET", "/api/v1/exports/{sink}/dead-letters", "listDeadLetters", TAG,
    "Events a sink gave up on after every attempt", "read", {200: Answer(DeadLetterPage, "A page.")}, (400,),
    path_params=("Sink",), query=DeadLetterQuery,
)  # fmt: skip
REPLAY = Operation(
    "POST", "/api/v1/exports/{sink}/dead-letters/replay", "replayDeadLetters", TAG,
    "Ask the sink's active exporter to resend dead letters", "operator",
    {200: Answer(ReplayResult, "How many were marked for resending.")}, (400, 413, 422), path_params=("Sink",),
    body=ReplayRequest,
)  # fmt: skip
OPERATIONS = (LIST, SCHEMAS_OP, EXPORTS, DEAD_LETTERS, REPLAY)


def events_routes(auth: TokenAuth, reader: OutboxReader, exports: ExportStore) -> list[Route]:
    async def list_events(request: Request) -> Response:
        """JSON pages from a cursor; with ``Accept: text/event-stream``, a live tail (SSE) from the cursor."""
        q = query(request, EventQuery)
        after = _cursor(request, q.after)
        try:
            types = event_types(q.type)
        except BadCursor as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
        station_id = q.station_id or None
        if "text/event-stream" in request.headers.get("accept", ""):
            return _tail(reader, after, types, station_id)
        events, cursor = await reader.page(after, limit=q.limit, types=types, station_id=station_id)
        return JsonResponse({"items": events, "next": str(cursor)})

    async def schemas(request: Request) -> Response:
        return JsonResponse({full_type(name): schema for name, schema in SCHEMAS.items()})

    async def list_exports(request: Request) -> Response:
        return JsonResponse({"items": await exports.sinks()})

    async def dead_letters(request: Request) -> Response:
        sink = _sink(request)
        q = query(request, DeadLetterQuery)
        items = await exports.dead_letters(sink, limit=q.limit, after_id=q.after)
        return JsonResponse({"items": items, "next": items[-1]["id"] if len(items) == q.limit else None})

    async def replay(request: Request) -> Response:
        """Ask the sink's active exporter to resend dead letters (the given ids, else all not yet replayed)."""
        sink = _sink(request)
        ids = parse(ReplayRequest, await json_body(request)).ids
        return JsonResponse({"requested": await exports.request_replay(sink, ids)})

    return [
        route(LIST, auth, list_events),
        route(SCHEMAS_OP, auth, schemas),
        route(EXPORTS, auth, list_exports),
        route(DEAD_LETTERS, auth, dead_letters),
        route(REPLAY, auth, replay),
    ]


def _tail(reader: OutboxReader, after: Cursor, types: list[str] | None, station_id: str | None) -> Response:
    """Server-Sent Events from ``after`` on: ``id`` is the cursor, so a browser's EventSource resumes by itself
    (Last-Event-ID). Bounded: it ends after SSE_MAX_SECONDS and the client reconnects."""

    async def stream() -> AsyncIterator[bytes]:
        cursor = after
        quiet_since = trio.current_time()
        with trio.move_on_after(SSE_MAX_SECONDS):
            while True:
                events, cursor = await reader.page(cursor, limit=500, types=types, station_id=station_id)
                for event in events:
                    yield b"id: " + event["sequence"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
                if events:
                    quiet_since = trio.current_time()
                    continue
                if trio.current_time() - quiet_since > SSE_KEEPALIVE:
                    quiet_since = trio.current_time()
                    yield b": keepalive\n\n"
                await trio.sleep(SSE_POLL)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
