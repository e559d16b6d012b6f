"""Request parsing with answers an operator can act on: every 4xx names the field and what was wrong."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from csms.api.errors import ApiError
from csms.api.models.fields import INT64_MAX
from csms.api.models.fields import STATION_ID as STATION_PATTERN

MAX_BODY_BYTES = 64 * 1024
STATION_ID = re.compile(STATION_PATTERN)
M = TypeVar("M", bound=BaseModel)


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


def parse(model: type[M], data: dict[str, Any]) -> M:
    """The body as its model, or a 422 naming every field that is wrong (unknown fields listed with the allowed)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise bad(problems(model, exc)) from None


def problems(model: type[BaseModel], exc: ValidationError) -> str:
    unknown, found = [], []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "body"
        if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
            unknown.append(field)
        elif error["type"] == "extra_forbidden":
            found.append(f"{field}: unknown field")
        else:
            found.append(f"{field}: {error['msg'].removeprefix('Value error, ')}")
    if unknown:
        allowed = ", ".join(sorted(model.model_fields))
        found.append(f"unknown field(s): {', '.join(sorted(unknown))}; allowed: {allowed}")
    return "; ".join(found)


def path_station_id(request: Request) -> str:
    station_id = str(request.path_params["station_id"])
    if not STATION_ID.fullmatch(station_id):
        raise ApiError(400, "bad_request", "station id must be 1-48 characters of A-Z a-z 0-9 . _ ~ -")
    return station_id


def parse_id(raw: str | None, name: str, maximum: int = INT64_MAX) -> int | None:
    """A non-negative integer id that fits the column (ASCII digits only: int() takes others, Postgres not)."""
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > maximum:
        raise ApiError(400, "bad_request", f"{name} must be an integer 0-{maximum}")
    return int(raw)
