"""OCPP timestamps: stored as the station sent them; a missing zone means UTC (as OCPP requires)."""

from __future__ import annotations

from datetime import UTC, datetime

from csms.ocpp import OcppError


def parse(value: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise OcppError("TypeConstraintViolation", f"{field} is not an RFC 3339 date-time: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


def wire(value: datetime) -> str:
    """The form we send: UTC with millisecond precision and a Z, which every firmware parses."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
