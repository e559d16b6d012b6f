"""Command forms generated from the OCPP JSON schemas of a station's protocol version.

Each request schema becomes a list of fields with the schema's own constraints as HTML attributes (required,
min/max, maxlength, enum options), so the browser checks what it can before sending; the server then applies
the same schema (and the domain rules) and its 422 is shown beside the form. Nested objects become dotted
fields; arrays of objects (charging schedules, local lists) are JSON text, checked for syntax in the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from csms.ocpp import Validator, load_schemas

PROTOCOL_VERSIONS = {"ocpp1.6": "1.6", "ocpp2.0.1": "2.0.1", "ocpp2.1": "2.0.1"}


@dataclass(frozen=True)
class Field:
    path: str  # dotted, e.g. "csChargingProfiles.stackLevel"
    kind: str  # text, integer, number, select, boolean, datetime, list, json
    required: bool
    description: str = ""
    options: tuple[str, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def dom_id(self) -> str:
        return "f-" + self.path.replace(".", "-")


@dataclass(frozen=True)
class CommandForm:
    action: str
    fields: tuple[Field, ...]


def version_of(protocol: str | None) -> str:
    """The schema version for a connection's subprotocol (1.6 when unknown)."""
    return PROTOCOL_VERSIONS.get(protocol or "", "1.6")


@cache
def command_forms(version: str) -> tuple[CommandForm, ...]:
    """One form per action the CSMS may send in this version, alphabetical (computed once per version)."""
    requests, _ = load_schemas(version)
    actions = Validator.for_version(version).csms_actions
    return tuple(
        CommandForm(action, tuple(_fields(requests[action], requests[action], "", True))) for action in sorted(actions)
    )


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _fields(schema: dict[str, Any], root: dict[str, Any], prefix: str, required: bool) -> list[Field]:
    schema = _resolve(schema, root)
    found: list[Field] = []
    needed = set(schema.get("required", ()))
    for name, child in schema.get("properties", {}).items():
        if name == "customData":
            continue
        path = f"{prefix}{name}"
        child = _resolve(child, root)
        is_required = required and name in needed
        kind = child.get("type")
        if kind == "object":
            found += _fields(child, root, path + ".", is_required)
        else:
            found.append(_field(path, child, root, is_required))
    return found


def _field(path: str, schema: dict[str, Any], root: dict[str, Any], required: bool) -> Field:
    kind = schema.get("type")
    description = str(schema.get("description", ""))[:300]
    attrs: dict[str, Any] = {}
    for rule, attr in (("minimum", "min"), ("maximum", "max"), ("maxLength", "maxlength"), ("minLength", "minlength")):
        if rule in schema:
            attrs[attr] = schema[rule]
    if "enum" in schema:
        return Field(path, "select", required, description, tuple(str(v) for v in schema["enum"]))
    if kind == "boolean":
        return Field(path, "boolean", required, description, ("true", "false"))
    if kind in ("integer", "number"):
        attrs["step"] = "1" if kind == "integer" else "any"
        return Field(path, kind, required, description, attrs=attrs)
    if kind == "array":
        items = _resolve(schema.get("items", {}), root)
        if items.get("type") in ("string", "integer", "number") and "properties" not in items:
            return Field(path, "list", required, description or f"comma-separated {items.get('type')} values")
        return Field(path, "json", required, description or "JSON array")
    if schema.get("format") == "date-time":
        return Field(path, "datetime", required, description or "RFC 3339, e.g. 2030-01-01T12:00:00Z", attrs=attrs)
    return Field(path, "text", required, description, attrs=attrs)
