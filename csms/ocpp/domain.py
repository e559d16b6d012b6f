"""Values a schema allows but the receiver cannot keep: the check between schema validation and the handler.

The JSON schemas bound few integers and no strings beyond length, so a schema-valid payload can still carry
connectorId 2^31, meterStart 2^63, a NUL character, an unpaired surrogate (``"\\ud800"`` is valid JSON) or a
timestamp such as ``9999-12-31T23:00:00-14:00`` that overflows when converted to UTC. Stored as they are,
those fail deep inside a shared write batch. This layer knows nothing of Postgres: the receiver passes its
integer column ranges in as :class:`StorageLimits`, and one checker per action is derived from the schemas,
so every field of every action (1.6 and 2.0.1, requests and responses) is covered without a rule per field.

Codes (OCPP-J 1.6 section 4.2.3; the same names in 2.0.1): an integer outside its column, a non-finite
number, a NUL character and a timestamp that cannot be represented are values of the right type that are not
allowed: PropertyConstraintViolation. A string holding an unpaired surrogate is no Unicode text at all (it has
no UTF-8 form), so it breaks the field's data type: TypeConstraintViolation. Each description starts with the
field's path, as the schema errors do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from csms.ocpp.errors import PROPERTY_CONSTRAINT_VIOLATION, TYPE_CONSTRAINT_VIOLATION, OcppError
from csms.ocpp.schemas import load_schemas

IntRange = tuple[int, int]
_Check = Callable[[Any, str], None]


@dataclass(frozen=True)
class StorageLimits:
    """The receiver's storage domain: the range of an integer field, by field name (the last path segment),
    else ``default_int``. Integers in free-form parts (no schema type, e.g. customData extras) are unbounded."""

    default_int: IntRange
    int_ranges: Mapping[str, IntRange] = field(default_factory=dict)

    def range_for(self, name: str) -> IntRange:
        return self.int_ranges.get(name, self.default_int)


class DomainCheck:
    """Per-action checkers for one OCPP version, built once (at start-up) from its schemas."""

    def __init__(self, version: str, limits: StorageLimits) -> None:
        requests, responses = load_schemas(version)
        self._requests = {action: _Builder(schema, limits).build(schema, "") for action, schema in requests.items()}
        self._responses = {action: _Builder(schema, limits).build(schema, "") for action, schema in responses.items()}

    def check_request(self, action: str, payload: Any) -> None:
        """Raise :class:`OcppError` naming the first field storage cannot hold (schema-valid input assumed)."""
        check = self._requests.get(action)
        if check is not None:
            check(payload, "")

    def check_response(self, action: str, payload: Any) -> None:
        check = self._responses.get(action)
        if check is not None:
            check(payload, "")


class _Builder:
    """Turns a schema into a checker closure; resolves local ``$ref``s (2.0.1 schemas use definitions)."""

    def __init__(self, root: dict[str, Any], limits: StorageLimits) -> None:
        self._root = root
        self._limits = limits

    def build(self, schema: Any, name: str) -> _Check:
        schema = self._resolve(schema)
        if not isinstance(schema, dict) or "type" not in schema:
            return _check_free
        int_range = self._limits.range_for(name) if "integer" in _types(schema) else None
        is_datetime = schema.get("format") == "date-time"
        properties = {key: self.build(sub, key) for key, sub in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties", True)
        other: _Check = self.build(extra, name) if isinstance(extra, dict) else _check_free
        items = self.build(schema["items"], name) if isinstance(schema.get("items"), dict) else _check_free

        def check(value: Any, path: str) -> None:
            if isinstance(value, str):
                _check_text(value, path)
                if is_datetime:
                    _check_datetime(value, path)
            elif isinstance(value, bool):
                return
            elif isinstance(value, int):
                if int_range is not None and not int_range[0] <= value <= int_range[1]:
                    raise _violation(
                        PROPERTY_CONSTRAINT_VIOLATION, path, f"must be between {int_range[0]} and {int_range[1]}"
                    )
            elif isinstance(value, float):
                _check_number(value, path)
            elif isinstance(value, dict):
                for key, sub in value.items():
                    known = properties.get(key)
                    if known is None:
                        _check_text(key, path)
                    (known or other)(sub, _join(path, key))
            elif isinstance(value, list):
                for i, sub in enumerate(value):
                    items(sub, f"{path}[{i}]")

        return check

    def _resolve(self, schema: Any) -> Any:
        for _ in range(32):  # a chain of refs, never a cycle in practice; bounded anyway
            ref = schema.get("$ref") if isinstance(schema, dict) else None
            if not isinstance(ref, str) or not ref.startswith("#/"):
                return schema
            target: Any = self._root
            for part in ref[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            schema = target
        return schema


def _check_free(value: Any, path: str) -> None:
    """Free-form JSON (stored as JSON): text must be storable, numbers finite; integers are unbounded."""
    if isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, float):
        _check_number(value, path)
    elif isinstance(value, dict):
        for key, sub in value.items():
            _check_text(key, path)
            _check_free(sub, _join(path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            _check_free(sub, f"{path}[{i}]")


def _check_text(value: str, path: str) -> None:
    if "\x00" in value:
        raise _violation(PROPERTY_CONSTRAINT_VIOLATION, path, "must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _violation(TYPE_CONSTRAINT_VIOLATION, path, "is not Unicode text (unpaired surrogate)") from None


def _check_number(value: float, path: str) -> None:
    if not math.isfinite(value):
        raise _violation(PROPERTY_CONSTRAINT_VIOLATION, path, "must be a finite number")


def _check_datetime(value: str, path: str) -> None:
    """Parseable, and still a datetime once converted to UTC (year 1 or 9999 plus an offset is not)."""
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _violation(
            PROPERTY_CONSTRAINT_VIOLATION, path, "is not a date-time that can be represented in UTC"
        ) from None


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    return {kind} if isinstance(kind, str) else set(kind) if isinstance(kind, list) else set()


def _join(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


def _violation(code: str, path: str, what: str) -> OcppError:
    where = path or "(payload)"
    return OcppError(code, f"{where} {what}", {"field": path, "rule": "storage"})
