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
_Check = Callable[[Any], None]


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
        _run(self._requests.get(action), payload)

    def check_response(self, action: str, payload: Any) -> None:
        _run(self._responses.get(action), payload)


class _Violation(Exception):
    """A value storage cannot hold. The path is collected on the way out (keys and indexes, innermost first),
    so a payload that passes, nearly every one, builds no path strings."""

    def __init__(self, code: str, what: str) -> None:
        self.code, self.what = code, what
        self.parts: list[str | int] = []


def _run(check: _Check | None, payload: Any) -> None:
    if check is None:
        return
    try:
        check(payload)
    except _Violation as bad:
        path = ""
        for part in reversed(bad.parts):
            path = f"{path}[{part}]" if isinstance(part, int) else f"{path}.{part}" if path else part
        raise OcppError(bad.code, f"{path or '(payload)'} {bad.what}", {"field": path, "rule": "storage"}) from None


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

        def check(value: Any) -> None:
            if isinstance(value, str):
                _check_text(value)
                if is_datetime:
                    _check_datetime(value)
            elif isinstance(value, bool):
                return
            elif isinstance(value, int):
                if int_range is not None and not int_range[0] <= value <= int_range[1]:
                    low, high = int_range
                    raise _Violation(PROPERTY_CONSTRAINT_VIOLATION, f"must be between {low} and {high}")
            elif isinstance(value, float):
                _check_number(value)
            elif isinstance(value, dict):
                _check_members(value, properties, other)
            elif isinstance(value, list):
                _check_items(value, items)

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


def _check_free(value: Any) -> None:
    """Free-form JSON (stored as JSON): text must be storable, numbers finite; integers are unbounded."""
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, float):
        _check_number(value)
    elif isinstance(value, dict):
        _check_members(value, _NO_PROPERTIES, _check_free)
    elif isinstance(value, list):
        _check_items(value, _check_free)


_NO_PROPERTIES: Mapping[str, _Check] = {}


def _check_members(value: dict[str, Any], properties: Mapping[str, _Check], other: _Check) -> None:
    for key, sub in value.items():
        known = properties.get(key)
        if known is None:
            _check_text(key)  # a bad key is reported at its parent, as the schema errors do
        try:
            (known or other)(sub)
        except _Violation as bad:
            bad.parts.append(key)
            raise


def _check_items(value: list[Any], items: _Check) -> None:
    for i, sub in enumerate(value):
        try:
            items(sub)
        except _Violation as bad:
            bad.parts.append(i)
            raise


def _check_text(value: str) -> None:
    if "\x00" in value:
        raise _Violation(PROPERTY_CONSTRAINT_VIOLATION, "must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Violation(TYPE_CONSTRAINT_VIOLATION, "is not Unicode text (unpaired surrogate)") from None


def _check_number(value: float) -> None:
    if not math.isfinite(value):
        raise _Violation(PROPERTY_CONSTRAINT_VIOLATION, "must be a finite number")


def _check_datetime(value: str) -> None:
    """Parseable, and still a datetime once converted to UTC (year 1 or 9999 plus an offset is not)."""
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _Violation(PROPERTY_CONSTRAINT_VIOLATION, "is not a date-time that can be represented in UTC") from None


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    return {kind} if isinstance(kind, str) else set(kind) if isinstance(kind, list) else set()
