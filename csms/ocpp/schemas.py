"""Payload validation against the `ocpp` package's JSON schemas, compiled once per version (fastjsonschema).

The package's own validator (jsonschema, ``ocpp.messages.validate_payload``) interprets each schema on every
message; fastjsonschema turns each schema into Python code once, which is an order of magnitude faster
(see ``benchmarks/bench_validation.py``).

Schema handling (nothing in site-packages is edited):

* 2.0.1 schema files start with a UTF-8 BOM: read with ``utf-8-sig``.
* ``$schema`` draft-04 (1.6) and draft-06 (2.0.1) compile as they are.
* ``multipleOf: 0.1`` on numbers (1.6 charging schedules): fastjsonschema divides Decimals built from
  ``repr(value)``, so 21.4 passes (the package needs its Decimal float-parser hack for that).
* ``format: date-time``: we check with our own pattern, which is RFC 3339 but also accepts a timestamp
  without a UTC offset. Much firmware omits it, the 1.6 text only demands "ISO 8601", and stored timestamps
  are kept as sent (clock skew must be visible, never fatal). ``check_formats=False`` turns format checks off
  entirely, as the package's validator does (it passes no format checker).
* fastjsonschema's ``use_default`` is off so validation never writes defaults into a payload.

Failing rule -> CallError code (the package's ``_validate_payload`` differs where noted; we follow the spec's
definitions of the codes):

* ``type`` -> TypeConstraintViolation
* ``required``, ``minItems``, ``maxItems`` -> OccurenceConstraintViolation (1.6) /
  OccurrenceConstraintViolation (2.0.1): the spec's "occurrence constraints" are cardinalities. (The package
  answers ProtocolError for a missing field.)
* ``enum``, ``maxLength``, ``minLength``, ``minimum``, ``maximum``, ``pattern``, ``format``, ``multipleOf`` ->
  PropertyConstraintViolation: a value of the right type but not allowed. (The package answers
  TypeConstraintViolation for maxLength, FormatViolation for the rest.)
* ``additionalProperties`` and anything else -> FormationViolation (1.6) / FormatViolation (2.0.1): the
  payload does not have the structure of the action's PDU (same as the package).

Every description starts with the offending field's path (e.g. ``meterValue[0].sampledValue[2].unit``).
"""

from __future__ import annotations

import importlib.resources
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import fastjsonschema

from csms.ocpp.errors import (
    NOT_IMPLEMENTED,
    PROPERTY_CONSTRAINT_VIOLATION,
    TYPE_CONSTRAINT_VIOLATION,
    ErrorCodes,
    OcppError,
    error_codes,
)
from csms.ocpp.schema_compile import compile_schema

# Actions a station sends to the CSMS (everything else in the schema directory goes the other way;
# DataTransfer goes both ways). From the "messages" chapters of the 1.6 (+ security whitepaper) and
# 2.0.1 part 2 specifications.
_STATION_ACTIONS: dict[str, frozenset[str]] = {
    "1.6": frozenset(
        {
            "Authorize",
            "BootNotification",
            "DataTransfer",
            "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
            "Heartbeat",
            "MeterValues",
            "StartTransaction",
            "StatusNotification",
            "StopTransaction",
            # OCPP 1.6 security extension
            "LogStatusNotification",
            "SecurityEventNotification",
            "SignCertificate",
            "SignedFirmwareStatusNotification",
        }
    ),
    "2.0.1": frozenset(
        {
            "Authorize",
            "BootNotification",
            "ClearedChargingLimit",
            "DataTransfer",
            "FirmwareStatusNotification",
            "Get15118EVCertificate",
            "GetCertificateStatus",
            "Heartbeat",
            "LogStatusNotification",
            "MeterValues",
            "NotifyChargingLimit",
            "NotifyCustomerInformation",
            "NotifyDisplayMessages",
            "NotifyEVChargingNeeds",
            "NotifyEVChargingSchedule",
            "NotifyEvent",
            "NotifyMonitoringReport",
            "NotifyReport",
            "PublishFirmwareStatusNotification",
            "ReportChargingProfiles",
            "ReservationStatusUpdate",
            "SecurityEventNotification",
            "SignCertificate",
            "StatusNotification",
            "TransactionEvent",
        }
    ),
}
_BOTH_WAYS = frozenset({"DataTransfer"})

_SCHEMA_DIRS = {"1.6": "v16", "2.0.1": "v201"}
_REQUEST_SUFFIX = {"1.6": "", "2.0.1": "Request"}

_DATE_TIME = re.compile(r"^\d{4}-[01]\d-[0-3]\d[Tt][0-2]\d:[0-5]\d(:[0-6]\d(\.\d+)?)?([Zz]|[+-][0-2]\d(:?[0-5]\d)?)?$")

_PROPERTY_RULES = frozenset(
    {
        "enum",
        "const",
        "maxLength",
        "minLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "pattern",
        "format",
        "multipleOf",
    }
)
_OCCURRENCE_RULES = frozenset({"required", "minItems", "maxItems", "minProperties", "maxProperties"})

_Check = Callable[[Any], Any]


class Validator:
    """Validates request and response payloads of one OCPP version. Build with :meth:`for_version`."""

    _cache: ClassVar[dict[tuple[str, bool], Validator]] = {}

    def __init__(self, version: str, *, check_formats: bool = True) -> None:
        """Compile every schema of ``version`` now, so no message ever waits for a compile."""
        self.version = version
        self.codes: ErrorCodes = error_codes(version)
        requests, responses = _compile_all(version, check_formats)
        self._requests = requests
        self._responses = responses
        self.actions: frozenset[str] = frozenset(requests) & frozenset(responses)
        self.station_actions: frozenset[str] = _STATION_ACTIONS[version] & self.actions
        self.csms_actions: frozenset[str] = (self.actions - self.station_actions) | (_BOTH_WAYS & self.actions)

    @classmethod
    def for_version(cls, version: str, *, check_formats: bool = True) -> Validator:
        """The shared validator of a version, compiled on first use (call at start-up)."""
        key = (version, check_formats)
        validator = cls._cache.get(key)
        if validator is None:
            validator = cls._cache[key] = cls(version, check_formats=check_formats)
        return validator

    def knows(self, action: str) -> bool:
        return action in self.actions

    def validate_request(self, action: str, payload: Any) -> None:
        """Raise :class:`OcppError` if ``payload`` breaks the schema (NotImplemented: unknown action)."""
        self._validate(self._requests, action, payload)

    def validate_response(self, action: str, payload: Any) -> None:
        self._validate(self._responses, action, payload)

    def _validate(self, checks: Mapping[str, _Check], action: str, payload: Any) -> None:
        check = checks.get(action)
        if check is None:
            raise OcppError(NOT_IMPLEMENTED, f"unknown action {action!r}", {"action": action})
        try:
            check(payload)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise self._to_ocpp_error(exc) from None

    def _to_ocpp_error(self, exc: fastjsonschema.JsonSchemaValueException) -> OcppError:
        name = exc.name or "data"
        field = _field_path(name)
        rule = exc.rule or ""
        if rule == "type":
            code, what = TYPE_CONSTRAINT_VIOLATION, f"must be of type {exc.rule_definition}"
        elif rule == "required":
            missing = _missing(exc.value, exc.rule_definition)
            field = _join(field, missing[0]) if len(missing) == 1 else field
            what = "is required" if len(missing) == 1 else f"misses required properties: {', '.join(missing)}"
            code = self.codes.occurrence_violation
        elif rule in _OCCURRENCE_RULES:
            code, what = self.codes.occurrence_violation, _strip_name(exc.message, name)
        elif rule in _PROPERTY_RULES:
            code, what = PROPERTY_CONSTRAINT_VIOLATION, _strip_name(exc.message, name)
        elif rule == "additionalProperties":
            extra = _extra(exc.value, exc.definition)
            field = _join(field, extra[0]) if len(extra) == 1 else field
            what = "is not allowed" if len(extra) == 1 else f"has properties that are not allowed: {', '.join(extra)}"
            code = self.codes.format_violation
        else:
            code, what = self.codes.format_violation, _strip_name(exc.message, name)
        return OcppError(code, f"{field or '(payload)'} {what}", {"field": field, "rule": rule})


def load_schemas(version: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `ocpp` package's (request, response) JSON schemas of a version, by action."""
    try:
        directory = importlib.resources.files("ocpp") / _SCHEMA_DIRS[version] / "schemas"
    except KeyError:
        raise ValueError(f"unsupported OCPP version {version!r}") from None
    suffix = _REQUEST_SUFFIX[version]
    requests: dict[str, Any] = {}
    responses: dict[str, Any] = {}
    for entry in directory.iterdir():
        name = entry.name
        if not name.endswith(".json"):
            continue
        stem = name[: -len(".json")]
        schema = json.loads(entry.read_text(encoding="utf-8-sig"))
        if stem.endswith("Response"):
            responses[stem[: -len("Response")]] = schema
        elif stem.endswith(suffix):
            requests[stem[: len(stem) - len(suffix)]] = schema
    return requests, responses


def _compile_all(version: str, check_formats: bool) -> tuple[dict[str, _Check], dict[str, _Check]]:
    formats = {"date-time": _DATE_TIME.pattern}

    def compiled(schemas: dict[str, Any]) -> dict[str, _Check]:
        return {
            action: compile_schema(schema, formats=formats, use_formats=check_formats)
            for action, schema in schemas.items()
        }

    requests, responses = load_schemas(version)
    return compiled(requests), compiled(responses)


def _field_path(name: str) -> str:
    """'data.meterValue[0].timestamp' -> 'meterValue[0].timestamp' ('data' alone -> '')."""
    if name == "data":
        return ""
    return name[5:] if name.startswith("data.") else name.removeprefix("data")


def _join(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


def _strip_name(message: str, name: str) -> str:
    return message[len(name) :].strip() if message.startswith(name) else message


def _missing(value: Any, required: Any) -> list[str]:
    if not isinstance(value, dict) or not isinstance(required, list):
        return []
    return [key for key in required if key not in value]


def _extra(value: Any, definition: Any) -> list[str]:
    if not isinstance(value, dict) or not isinstance(definition, dict):
        return []
    allowed = definition.get("properties", {})
    patterns = [re.compile(p) for p in definition.get("patternProperties", {})]
    return sorted(k for k in value if k not in allowed and not any(p.search(k) for p in patterns))
