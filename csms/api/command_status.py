"""How a command's outcome reads over HTTP (presentation, so it lives here and not in csms.commands)."""

from __future__ import annotations

from typing import Literal

CommandStatus = Literal[
    "pending", "completed", "call_error", "timeout", "offline", "unknown_outcome", "failed", "superseded"
]

HTTP_STATUS: dict[str, int] = {
    "completed": 200,
    "pending": 202,
    "call_error": 502,
    "timeout": 504,
    "offline": 409,
    "unknown_outcome": 503,
    "failed": 503,
    "superseded": 409,
}

# What each status tells the caller of a route that sends a command (the body is the command record).
OUTCOMES: dict[int, str] = {
    200: "completed: the station answered; `result` is its CallResult payload.",
    409: "offline: the station is not connected to any replica.",
    502: "call_error: the station answered with a CallError (or an answer that broke the schema).",
    503: "unknown_outcome: the station moved between replicas (error.code OwnershipMoved) or disconnected"
    " (StationDisconnected, e.g. a hard Reset) mid-call; it may or may not have acted;"
    " or failed: the CSMS could not send it now (too many calls in flight); retry later.",
    504: "timeout: no answer from the station in time.",
}
ASYNC_OUTCOME = "pending (async=true): poll GET /api/v1/commands/{id}."
