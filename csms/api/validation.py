"""Request parsing with answers an operator can act on: every 4xx names the field and what was wrong."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request

from csms.api.errors import ApiError
from csms.authorization import TOKEN_TYPES

MAX_BODY_BYTES = 64 * 1024
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
STATION_ID = re.compile(r"^[A-Za-z0-9._~\-]{1,48}$")
ID_TAG_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")
BOOT_STATUSES = ("Accepted", "Pending", "Rejected")


def bad(message: str) -> ApiError:
    return ApiError(422, "invalid", message)


async def json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes")
    try:
        data = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "bad_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "request body must be a JSON object")
    return data


def int_field(data: dict[str, Any], key: str, minimum: int = 0, maximum: int = INT64_MAX) -> int:
    """A JSON integer in range; never a bool (Python's bool is an int), a float or a numeric string."""
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise ApiError(400, "bad_request", f"{key} must be an integer {minimum}-{maximum}")
    return value


def reject_unknown(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise bad(f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _optional_str(data: dict[str, Any], key: str, max_len: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len or "\x00" in value:
        raise bad(f"{key} must be a string of at most {max_len} characters (no NUL)")
    return value


def station_body(data: dict[str, Any]) -> dict[str, Any]:
    reject_unknown(data, {"password", "boot_status", "description", "security_profile"})
    out: dict[str, Any] = {}
    if "security_profile" in data:
        profile = data["security_profile"]
        if profile is not None and (not isinstance(profile, int) or isinstance(profile, bool) or not 0 <= profile <= 3):
            raise bad("security_profile must be 0, 1, 2 or 3, or null (1 with a password, else 0)")
        out["security_profile"] = profile
    if "password" in data:
        password = data["password"]
        if password is not None and (not isinstance(password, str) or not 8 <= len(password) <= 40):
            # OCPP security profile 1: the AuthorizationKey is 16-40 characters; we accept 8+ for labs.
            raise bad("password must be a string of 8-40 characters, or null to remove it")
        out["password"] = password
    if "boot_status" in data:
        status = data["boot_status"]
        if status is not None and status not in BOOT_STATUSES:
            raise bad(f"boot_status must be one of {', '.join(BOOT_STATUSES)} or null")
        out["boot_status"] = status
    if "description" in data:
        out["description"] = _optional_str(data, "description", 500) or ""
    return out


def id_tag_body(data: dict[str, Any]) -> dict[str, Any]:
    reject_unknown(data, {"status", "expiry_date", "parent_id_tag", "type"})
    status = data.get("status", "Accepted")
    if status not in ID_TAG_STATUSES:
        raise bad(f"status must be one of {', '.join(ID_TAG_STATUSES)}")
    expiry = data.get("expiry_date")
    if expiry is not None:
        if not isinstance(expiry, str):
            raise bad("expiry_date must be an RFC 3339 date-time string or null")
        expiry = parse_datetime(expiry, "expiry_date", status=422)
    parent = _optional_str(data, "parent_id_tag", 36)
    if parent == "":
        raise bad("parent_id_tag must not be empty")
    token_type = data.get("type")
    if token_type is not None and token_type not in TOKEN_TYPES:
        raise bad(f"type must be one of {', '.join(TOKEN_TYPES)} (OCPP 2.0.1 IdTokenEnumType) or null for any")
    return {"status": status, "expiry_date": expiry, "parent_id_tag": parent, "type": token_type}


def path_station_id(request: Request) -> str:
    station_id = str(request.path_params["station_id"])
    if not STATION_ID.fullmatch(station_id):
        raise ApiError(400, "bad_request", "station id must be 1-48 characters of A-Z a-z 0-9 . _ ~ -")
    return station_id


def page_limit(request: Request, default: int = 100, maximum: int = 1000) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise ApiError(400, "bad_request", f"limit must be an integer 1-{maximum}")
    return int(raw)


def parse_id(raw: str | None, name: str, maximum: int = INT64_MAX) -> int | None:
    """A non-negative integer id that fits the column (ASCII digits only: int() takes others, Postgres not)."""
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > maximum:
        raise ApiError(400, "bad_request", f"{name} must be an integer 0-{maximum}")
    return int(raw)


def parse_bool(raw: str | None, name: str) -> bool | None:
    if raw is None:
        return None
    if raw.lower() in {"true", "1", "yes"}:
        return True
    if raw.lower() in {"false", "0", "no"}:
        return False
    raise ApiError(400, "bad_request", f"{name} must be true or false")


def parse_datetime(raw: str | None, name: str, status: int = 400) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        value.astimezone(UTC)  # an offset can push year 1 or 9999 out of range: OverflowError
    except (ValueError, OverflowError):
        raise ApiError(
            status,
            "bad_request" if status == 400 else "invalid",
            f"{name} must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z",
        ) from None
    return value
