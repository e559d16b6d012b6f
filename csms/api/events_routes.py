"""The event stream for consumers: pull pages from a durable cursor, tail live (SSE), read the schemas;
and the exporters' state: cursors, lag, dead letters and their replay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import trio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.errors import ApiError
from csms.api.models.fields import INT64_MAX
from csms.api.responses import JsonResponse
from csms.api.validation import bad, json_body, page_limit, parse_id, reject_unknown
from csms.outbox import SCHEMAS, BadCursor, Cursor, ExportStore, OutboxReader, event_types, full_type

SSE_POLL = 0.5  # seconds between reads while a live tail is caught up
SSE_KEEPALIVE = 15.0  # a comment line this often keeps proxies from closing an idle stream
SSE_MAX_SECONDS = 3600.0  # a stream ends after this; the client reconnects with Last-Event-ID (bounded work)
_SINK_NAME = 100


def _filters(request: Request, after_default: str | None = None) -> tuple[Cursor, list[str] | None, str | None]:
    q = request.query_params
    try:
        after = Cursor.parse(q.get("after") or request.headers.get("last-event-id") or after_default)
        types = event_types(q.get("type"))
    except BadCursor as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    station_id = q.get("station_id") or None
    return after, types, station_id


def _sink(request: Request) -> str:
    sink = request.path_params["sink"]
    if not 1 <= len(sink) <= _SINK_NAME:
        raise ApiError(400, "bad_request", f"a sink name is 1-{_SINK_NAME} characters")
    return str(sink)


def _replay_ids(data: dict[str, Any]) -> list[int] | None:
    reject_unknown(data, {"ids"})
    ids = data.get("ids")
    if ids is None:
        return None
    if (
        not isinstance(ids, list)
        or len(ids) > 1000
        or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= INT64_MAX for i in ids)
    ):
        raise bad("ids must be a list of at most 1000 dead-letter ids (integers), or absent for all")
    return ids


def events_routes(auth: TokenAuth, reader: OutboxReader, exports: ExportStore) -> list[Route]:
    async def list_events(request: Request) -> Response:
        """JSON pages from a cursor; with ``Accept: text/event-stream``, a live tail (SSE) from the cursor."""
        auth.require(request, "read")
        after, types, station_id = _filters(request)
        if "text/event-stream" in request.headers.get("accept", ""):
            return _tail(reader, after, types, station_id)
        events, cursor = await reader.page(after, limit=page_limit(request), types=types, station_id=station_id)
        return JsonResponse({"items": events, "next": str(cursor)})

    async def schemas(request: Request) -> Response:
        auth.require(request, "read")
        return JsonResponse({full_type(name): schema for name, schema in SCHEMAS.items()})

    async def list_exports(request: Request) -> Response:
        auth.require(request, "read")
        return JsonResponse({"items": await exports.sinks()})

    async def dead_letters(request: Request) -> Response:
        auth.require(request, "read")
        sink = _sink(request)
        limit = page_limit(request)
        after = parse_id(request.query_params.get("after"), "after") or 0
        items = await exports.dead_letters(sink, limit=limit, after_id=after)
        return JsonResponse({"items": items, "next": items[-1]["id"] if len(items) == limit else None})

    async def replay(request: Request) -> Response:
        """Ask the sink's active exporter to resend dead letters (the given ids, else all not yet replayed)."""
        auth.require(request, "operator")
        sink = _sink(request)
        ids = _replay_ids(await json_body(request))
        return JsonResponse({"requested": await exports.request_replay(sink, ids)})

    return [
        Route("/api/v1/events", list_events),
        Route("/api/v1/events/schemas", schemas),
        Route("/api/v1/exports", list_exports),
        Route("/api/v1/exports/{sink}/dead-letters", dead_letters),
        Route("/api/v1/exports/{sink}/dead-letters/replay", replay, methods=["POST"]),
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
