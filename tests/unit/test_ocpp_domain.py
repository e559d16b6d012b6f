"""The storage-domain check: every field of every station-to-CSMS action that storage cannot hold is refused
with the spec's code and a description naming the field (values the schemas themselves allow)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from csms.central_system.storage_limits import INT4, METER, domain_check
from csms.ocpp import OcppError, Validator
from csms.ocpp.schemas import load_schemas

Path = tuple[str | int, ...]


def _example(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """A schema-valid value with every optional property present and one item per array."""
    while "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[1]]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {key: _example(sub, root) for key, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [_example(schema["items"], root)] * max(1, schema.get("minItems", 1))
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if schema.get("format") == "date-time":
        return "2026-01-01T00:00:00Z"
    return "x"


def _leaves(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _leaves(sub, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _leaves(sub, (*path, i))
    else:
        yield path, value


def _set(payload: Any, path: Path, value: Any) -> Any:
    out = copy.deepcopy(payload)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


def _dotted(path: Path) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def _bad_values(name: str, value: Any) -> list[tuple[Any, str]]:
    """(a schema-valid value storage cannot hold, the code) for a leaf of this example's kind."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        top = METER[1] if name in ("meterStart", "meterStop") else INT4[1]
        return [(top + 1, "PropertyConstraintViolation"), (-top - 2, "PropertyConstraintViolation")]
    if value == "2026-01-01T00:00:00Z":
        return [
            ("9999-12-31T23:00:00-14:00", "PropertyConstraintViolation"),
            ("0001-01-01T00:00:00+01:00", "PropertyConstraintViolation"),
        ]
    if value == "x":
        return [("x\x00", "PropertyConstraintViolation"), ("x\ud800", "TypeConstraintViolation")]
    return []  # enums: the schema already pins them


def _cases(version: str) -> Iterator[tuple[str, dict[str, Any], Path, Any, str]]:
    validator = Validator.for_version(version)
    requests, _ = load_schemas(version)
    for action in sorted(validator.station_actions):
        example = _example(requests[action], requests[action])
        validator.validate_request(action, example)
        for path, leaf in _leaves(example):
            for bad, code in _bad_values(str(path[-1]), leaf):
                payload = _set(example, path, bad)
                try:
                    validator.validate_request(action, payload)
                except OcppError:
                    continue  # the schema refuses it already (a bounded integer, a pattern)
                yield action, payload, path, bad, code


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_every_field_storage_cannot_hold_is_refused_by_name(version: str) -> None:
    check = domain_check(version)
    cases = list(_cases(version))
    assert len(cases) > (40 if version == "1.6" else 300)  # the walk really reached the fields
    for action, payload, path, bad, code in cases:
        with pytest.raises(OcppError) as caught:
            check.check_request(action, payload)
        where = f"{action} {_dotted(path)}={bad!r}"
        assert caught.value.code == code, where
        assert caught.value.description.startswith(_dotted(path) + " "), where


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_values_storage_holds_pass(version: str) -> None:
    check = domain_check(version)
    requests, _ = load_schemas(version)
    for action in Validator.for_version(version).station_actions:
        check.check_request(action, _example(requests[action], requests[action]))
    check.check_request("DataTransfer", {"vendorId": "v", "data": "ümlaut ✓ 𝄞"})


def test_the_issue_examples() -> None:
    check = domain_check("1.6")
    start = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-01-01T00:00:00+02:00"}
    for field, value in [
        ("connectorId", 2**31),
        ("meterStart", 2**63),
        ("reservationId", 2**31),
        ("timestamp", "9999-12-31T23:30:00-14:00"),
        ("idTag", "T\x00"),
    ]:
        with pytest.raises(OcppError, match=f": {field} ") as caught:
            check.check_request("StartTransaction", {**start, field: value})
        assert caught.value.code == "PropertyConstraintViolation"
        assert caught.value.details == {"field": field, "rule": "storage"}
    with pytest.raises(OcppError, match=r": transactionId "):
        check.check_request("StopTransaction", {"transactionId": 2**31, "meterStop": 1, "timestamp": "2026-01-01"})
    check.check_request("StartTransaction", {**start, "meterStart": METER[1], "timestamp": "9999-12-31T23:30:00Z"})


def test_free_form_parts_are_checked_too() -> None:
    check = domain_check("2.0.1")
    base = {"chargingStation": {"model": "m", "vendorName": "v"}, "reason": "PowerUp"}
    with pytest.raises(OcppError, match=r": customData\.note ") as caught:
        check.check_request("BootNotification", {**base, "customData": {"vendorId": "v", "note": "a\x00"}})
    assert caught.value.code == "PropertyConstraintViolation"
    # JSON keeps big integers; only typed integer fields are bounded by their column.
    check.check_request("BootNotification", {**base, "customData": {"vendorId": "v", "n": 2**70}})
