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
