"""OCPP 2.0.1 device-model entries (NotifyReport reportData, Get/SetVariables results) as rows to upsert.

The identity of a variable is OCPP's: component (name, instance, EVSE id, connector id) and variable (name,
instance). Attributes are keyed by type (Actual when the station leaves it out, as the spec defaults it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Payload = dict[str, Any]
Identity = tuple[str, str, int | None, int | None, str, str]

UPSERT_VARIABLE = """
INSERT INTO device_variables AS v (station_id, component, component_instance, evse_id, connector_id, variable,
    variable_instance, characteristics, attributes, report_request_id, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
ON CONFLICT (station_id, component, component_instance, (coalesce(evse_id, -1)), (coalesce(connector_id, -1)),
    variable, variable_instance)
DO UPDATE SET characteristics = coalesce(EXCLUDED.characteristics, v.characteristics),
    attributes = v.attributes || (
        SELECT coalesce(jsonb_object_agg(a.key, coalesce(v.attributes -> a.key, '{}'::jsonb) || a.value), '{}')
        FROM jsonb_each(EXCLUDED.attributes) AS a),
    report_request_id = coalesce(EXCLUDED.report_request_id, v.report_request_id),
    updated_at = now()
"""


def identity(component: Payload, variable: Payload) -> Identity:
    evse = component.get("evse") or {}
    return (
        component["name"],
        component.get("instance", ""),
        evse.get("id"),
        evse.get("connectorId"),
        variable["name"],
        variable.get("instance", ""),
    )


def _without_custom_data(value: Payload) -> Payload:
    return {key: item for key, item in value.items() if key != "customData"}


def report_row(station_id: str, request_id: int, entry: Payload, at: str) -> tuple[Any, ...]:
    """One reportData entry: the characteristics, and every attribute it lists, as the report states them."""
    attributes = {
        attribute.get("type", "Actual"): {
            **_without_custom_data(attribute),
            "type": attribute.get("type", "Actual"),
            "source": "NotifyReport",
            "reboot_required": False,
            "updated_at": at,
        }
        for attribute in entry["variableAttribute"]
    }
    characteristics = entry.get("variableCharacteristics")
    return (
        station_id,
        *identity(entry["component"], entry["variable"]),
        _without_custom_data(characteristics) if characteristics else None,
        attributes,
        request_id,
    )


def value_row(
    station_id: str, entry: Payload, value: str, source: str, at: str, *, reboot_required: bool = False
) -> tuple[Any, ...]:
    """A value the station confirmed (GetVariables) or accepted (SetVariables), for one attribute type; with
    reboot_required it takes effect at the station's next reboot (SetVariables answered RebootRequired)."""
    kind = entry.get("attributeType", "Actual")
    attribute = {"type": kind, "value": value, "source": source, "reboot_required": reboot_required, "updated_at": at}
    return (station_id, *identity(entry["component"], entry["variable"]), None, {kind: attribute}, None)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
