"""Field types shared by the API's models: each says in one place what it accepts and how it is documented."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StrictInt

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

Protocol = Literal["ocpp2.0.1", "ocpp1.6"]
STATION_ID = r"^[A-Za-z0-9._~\-]{1,48}$"  # the last path segment a station connects with


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL")  # Postgres text cannot hold it
    return value


def _instant(value: Any) -> datetime:
    """RFC 3339 text only (never a number); no offset means UTC; an offset must not push it off the calendar."""
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string, e.g. 2026-01-31T12:00:00Z")
    try:
        parsed = datetime.fromisoformat(value)
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        parsed.astimezone(UTC)  # an offset can push year 1 or 9999 out of range: OverflowError
    except (ValueError, OverflowError):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z") from None
    return parsed


Text = Annotated[str, AfterValidator(_no_nul)]
Instant = Annotated[datetime, BeforeValidator(_instant)]
Wh = Annotated[StrictInt, Field(ge=0, le=INT64_MAX)]


def _ascii_digits(value: Any) -> Any:
    """A query's integer as Postgres reads it: ASCII digits only (int() would also take ' 5', '1_0', '²')."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a non-negative integer (digits only)")
    return value


_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _yes_no(value: Any) -> Any:
    if isinstance(value, str):
        if value.lower() not in _WORDS:
            raise ValueError("must be true or false")
        return _WORDS[value.lower()]
    return value


# Integer query parameters: ASCII digits only, then the range check of the column's type.
Digits = BeforeValidator(_ascii_digits)
QueryBool = Annotated[bool, BeforeValidator(_yes_no)]
