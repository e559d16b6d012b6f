"""OpenAPI for the event stream and the exporters (kept beside openapi.py, which includes it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Schema = dict[str, Any]

_STR: Schema = {"type": "string"}
_INT: Schema = {"type": "integer"}
_DT: Schema = {"type": "string", "format": "date-time"}


def _closed(properties: dict[str, Schema]) -> Schema:
    return {"type": "object", "additionalProperties": False, "required": list(properties), "properties": properties}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def event_schemas() -> dict[str, Schema]:
    cloud_event = _closed(
        {
            "specversion": {"const": "1.0"},
            "id": {**_STR, "description": "Stable and unique: dedupe on it."},
            "source": {**_STR, "description": "This installation (CSMS_EXPORT_SOURCE)."},
            "type": {**_STR, "description": "csms.<aggregate>.<change>.v<N>; schemas at /api/v1/events/schemas."},
            "subject": {"type": ["string", "null"], "description": "The station id."},
            "time": _DT,
            "datacontenttype": {"const": "application/json"},
            "sequence": {**_STR, "description": "This event's cursor (pass as `after` to read on from here)."},
            "data": {"type": "object"},
        }
    )
    return {
        "CloudEvent": {**cloud_event, "description": "A CloudEvents 1.0 event (JSON format)."},
        "EventPage": _closed({"items": {"type": "array", "items": _ref("CloudEvent")}, "next": _STR}),
        "EventSchemas": {
            "type": "object",
            "additionalProperties": {"type": "object"},
            "description": "The JSON Schema of each event type's `data`, by type.",
        },
        "ExportSink": _closed(
            {
                "sink": _STR,
                "cursor": _STR,
                "exported": _INT,
                "updated_at": _DT,
                "lag_events": _INT,
                "lag_seconds": {"type": "number"},
                "dead_letters": _INT,
            }
        ),
        "ExportSinks": _closed({"items": {"type": "array", "items": _ref("ExportSink")}}),
        "DeadLetter": _closed(
            {
                "id": _INT,
                "event_id": _STR,
                "event": _ref("CloudEvent"),
                "attempts": _INT,
                "last_error": _STR,
                "failed_at": _DT,
                "replayed_at": {"type": ["string", "null"], "format": "date-time"},
                "replay_requested": {"type": "boolean"},
            }
        ),
        "DeadLetterPage": _closed(
            {"items": {"type": "array", "items": _ref("DeadLetter")}, "next": {"type": ["integer", "null"]}}
        ),
        "ReplayRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "ids": {
                    "type": "array",
                    "maxItems": 1000,
                    "items": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                    "description": "Dead letters to resend; absent: every one not yet replayed.",
                }
            },
        },
        "ReplayResult": _closed({"requested": _INT}),
    }


def event_paths(
    op: Callable[..., Schema],
    param: Callable[..., Schema],
    p: Callable[[str], Schema],
    ok: Callable[[Schema, str], Schema],
    r: Callable[[str], Schema],
) -> dict[str, Schema]:
    list_errors = {"400": r("BadRequest")}
    sink = param("sink", "path", {"type": "string", "minLength": 1, "maxLength": 100}, "A sink name.", "webhook")
    event_page = ok(_ref("EventPage"), "Events after the cursor, oldest first; `next` continues (also when empty).")
    event_page["content"]["text/event-stream"] = {
        "schema": {
            **_STR,
            "description": "With `Accept: text/event-stream`: a live tail, one `id: <cursor>` + `data: <CloudEvent>`"
            " per event; reconnect with Last-Event-ID.",
        }
    }
    return {
        "/api/v1/events": {
            "get": op(
                "listEvents",
                "events",
                "Read the event stream from a durable cursor (JSON pages, or a live SSE tail)",
                "read",
                {"200": event_page, **list_errors},
                params=(
                    param(
                        "after", "query", _STR, "Cursor: `next` of the previous page or an event's `sequence`.", "0-0"
                    ),
                    param("type", "query", _STR, "Only these types (comma-separated, with or without 'csms.')."),
                    p("StationFilter"),
                    p("Limit"),
                ),
            )
        },
        "/api/v1/events/schemas": {
            "get": op(
                "eventSchemas",
                "events",
                "The JSON Schema of every event type",
                "read",
                {"200": ok(_ref("EventSchemas"), "By type.")},
            )
        },
        "/api/v1/exports": {
            "get": op(
                "listExports",
                "events",
                "Every sink's durable cursor, lag and dead letters",
                "read",
                {"200": ok(_ref("ExportSinks"), "The sinks that have exported.")},
            )
        },
        "/api/v1/exports/{sink}/dead-letters": {
            "get": op(
                "listDeadLetters",
                "events",
                "Events a sink gave up on after every attempt",
                "read",
                {"200": ok(_ref("DeadLetterPage"), "A page."), **list_errors},
                params=(
                    sink,
                    p("Limit"),
                    param("after", "query", {"type": "integer", "minimum": 0}, "Cursor: `next`."),
                ),
            )
        },
        "/api/v1/exports/{sink}/dead-letters/replay": {
            "post": op(
                "replayDeadLetters",
                "events",
                "Ask the sink's active exporter to resend dead letters",
                "operator",
                {
                    "200": ok(_ref("ReplayResult"), "How many were marked for resending."),
                    "400": r("BadRequest"),
                    "413": r("TooLarge"),
                    "422": r("Invalid"),
                },
                params=(sink,),
                body=_ref("ReplayRequest"),
            )
        },
    }
