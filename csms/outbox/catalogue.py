"""The event catalogue: every event type the outbox carries, with the JSON Schema of its ``data``.

Types are versioned (``csms.transaction.ended.v1``): a change that is not backwards compatible adds ``.v2``
beside ``.v1`` instead of editing it, so consumers migrate on their own schedule. The schemas are published at
``/api/v1/events/schemas``; tests validate every emitted event against them. Data is protocol-neutral: OCPP 1.6
and 2.0.1 paths emit the same types (the protocol is a field where it matters).
"""

from __future__ import annotations

from typing import Any

PREFIX = "csms."

_STR = {"type": "string"}
_OPT_STR = {"type": ["string", "null"]}
_INT = {"type": "integer"}
_OPT_INT = {"type": ["integer", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_OPT_TIME = {"type": ["string", "null"], "format": "date-time"}
_OBJ = {"type": "object"}
_NUM = {"type": "number"}
_OPT_NUM = {"type": ["number", "null"]}


def _schema(name: str, description: str, required: dict[str, Any], optional: dict[str, Any] | None = None) -> Any:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{PREFIX}{name}",
        "title": name,
        "description": description,
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": sorted(required),
        "additionalProperties": True,  # consumers must ignore fields they do not know (additive changes)
    }


_SAMPLE = {
    "type": "object",
    "properties": {"timestamp": _TIME, "value": _STR, "measurand": _STR, "unit": _STR, "phase": _STR},
    "required": ["timestamp", "value", "measurand"],
}

_VARIABLE = {
    "type": "object",
    "properties": {
        "component": _STR,
        "component_instance": _STR,
        "evse_id": _OPT_INT,
        "connector_id": _OPT_INT,
        "variable": _STR,
        "variable_instance": _STR,
        "attribute_type": _STR,
        "value": _STR,
        "reboot_required": {"type": "boolean"},
    },
    "required": ["component", "variable", "attribute_type", "value"],
}

_ALLOCATION = {
    "type": "object",
    "properties": {
        "station_id": _STR,
        "default_limit": _OPT_NUM,
        "default_pending": _OPT_NUM,
        "transaction_id": _OPT_INT,
        "connector_id": _OPT_INT,
        "tx_limit": _OPT_NUM,
        "tx_pending": _OPT_NUM,
        "stuck": {"type": "boolean"},
    },
    "required": ["station_id"],
}

SCHEMAS: dict[str, Any] = {
    "station.registered.v1": _schema("station.registered.v1", "An operator added a station.", {"station_id": _STR}),
    "station.updated.v1": _schema(
        "station.updated.v1",
        "An operator changed or deleted a station's registration.",
        {"station_id": _STR, "deleted": {"type": "boolean"}},
    ),
    "station.booted.v1": _schema(
        "station.booted.v1",
        "A station booted and was answered.",
        {"station_id": _STR, "status": _STR, "received_at": _TIME},
        {
            "vendor": _OPT_STR,
            "model": _OPT_STR,
            "serial_number": _OPT_STR,
            "firmware_version": _OPT_STR,
            "reason": _OPT_STR,
        },
    ),
    "station.connected.v1": _schema(
        "station.connected.v1",
        "A station's WebSocket connection opened on a replica.",
        {"station_id": _STR, "node_id": _STR, "connection_id": _STR, "protocol": _STR, "at": _TIME},
    ),
    "station.disconnected.v1": _schema(
        "station.disconnected.v1",
        "A station's connection closed.",
        {"station_id": _STR, "connection_id": _STR, "reason": _STR, "at": _TIME},
    ),
    "station.ownership_moved.v1": _schema(
        "station.ownership_moved.v1",
        "A replica took over a station: writes for it are fenced by the new token from now on.",
        {"station_id": _STR, "node_id": _STR, "fence_token": _INT},
    ),
    "connector.status_changed.v1": _schema(
        "connector.status_changed.v1",
        "A connector (EVSE) reported its status.",
        {"station_id": _STR, "connector_id": _INT, "status": _STR, "error_code": _STR, "received_at": _TIME},
        {"evse_id": _OPT_INT, "station_timestamp": _OPT_TIME, "info": _OPT_STR},
    ),
    "transaction.started.v1": _schema(
        "transaction.started.v1",
        "A charging session started.",
        {
            "transaction_id": _INT,
            "station_id": _STR,
            "connector_id": _INT,
            "id_token": _OPT_STR,  # 2.0.1: a session may start before any token (cable plugged in)
            "id_token_status": _OPT_STR,
            "meter_start_wh": _OPT_INT,  # 2.0.1: may start before any energy reading
            "started_at": _TIME,
            "protocol": _STR,
        },
    ),
    "transaction.updated.v1": _schema(
        "transaction.updated.v1",
        "A running session changed: a new energy register reading (energy so far = register - meter start) or,"
        " in 2.0.1, any other TransactionEvent (charging state...).",
        {
            "transaction_id": _INT,
            "station_id": _STR,
            "meter_wh": _OPT_INT,
            "energy_so_far_wh": _OPT_INT,
            "at": _TIME,
        },
        {"charging_state": _OPT_STR},
    ),
    "transaction.ended.v1": _schema(
        "transaction.ended.v1",
        "A session ended (by the station, or closed as Abandoned/ClosedByOperator until the station's own stop).",
        {
            "transaction_id": _INT,
            "station_id": _STR,
            "meter_stop_wh": _OPT_INT,
            "energy_wh": _OPT_INT,
            "reason": _STR,
            "stopped_at": _TIME,
        },
        {"id_token": _OPT_STR, "protocol": _STR},
    ),
    "meter_values.recorded.v1": _schema(
        "meter_values.recorded.v1",
        "A batch of meter samples (one station message) was stored.",
        {
            "station_id": _STR,
            "connector_id": _INT,
            "transaction_id": _OPT_INT,
            "samples": {"type": "array", "items": _SAMPLE},
        },
    ),
    "command.requested.v1": _schema(
        "command.requested.v1",
        "An operator command to a station was accepted for execution.",
        {"command_id": _INT, "station_id": _STR, "action": _STR, "requested_by": _STR, "payload": _OBJ},
    ),
    "command.completed.v1": _schema(
        "command.completed.v1",
        "An operator command finished (answered, failed, timed out or lost its executor).",
        {"command_id": _INT, "station_id": _STR, "action": _STR, "status": _STR},
        {"result": {"type": ["object", "null"]}, "error": {"type": ["object", "null"]}},
    ),
    "id_tag.changed.v1": _schema(
        "id_tag.changed.v1",
        "An id tag (token) was created, changed or deleted.",
        {"id_tag": _STR, "deleted": {"type": "boolean"}},
        {"status": _OPT_STR, "expiry_date": _OPT_TIME, "parent_id_tag": _OPT_STR},
    ),
    "security.event.v1": _schema(
        "security.event.v1",
        "A station reported a security event (OCPP 2.0.1 SecurityEventNotification).",
        {"station_id": _STR, "type": _STR, "at": _TIME},
        {"tech_info": _OPT_STR},
    ),
    "device_model.report_received.v1": _schema(
        "device_model.report_received.v1",
        "A station's NotifyReport part (OCPP 2.0.1) was stored in its device model; the variables are read"
        " through /api/v1/stations/{id}/device-model.",
        {
            "station_id": _STR,
            "request_id": _INT,
            "seq_no": _INT,
            "tbc": {"type": "boolean"},
            "variables": _INT,
            "generated_at": _TIME,
        },
    ),
    "device_model.variables_updated.v1": _schema(
        "device_model.variables_updated.v1",
        "Variable values a station confirmed (GetVariables) or accepted (SetVariables) were stored.",
        {"station_id": _STR, "source": _STR, "variables": {"type": "array", "items": _VARIABLE}},
    ),
    "site.defined.v1": _schema(
        "site.defined.v1",
        "An operator created or replaced a site: its grid limit and the stations sharing it.",
        {
            "site_id": _STR,
            "created": {"type": "boolean"},
            "limit": _NUM,
            "unit": _STR,
            "failsafe": _OPT_NUM,  # A per station; null: the limit split evenly
            "station_ids": {"type": "array", "items": _STR},
        },
        {"voltage": _OPT_NUM},
    ),
    "site.limit_overridden.v1": _schema(
        "site.limit_overridden.v1",
        "An operator set a temporary limit for a site (until it expires).",
        {"site_id": _STR, "limit": _NUM, "until": _TIME},
    ),
    "site.allocations_changed.v1": _schema(
        "site.allocations_changed.v1",
        "The site's balancer recorded what stations hold (pending before a send, in force after the answers),"
        " or forgot stations that left the site.",
        {
            "site_id": _STR,
            "fence_token": _INT,
            "allocations": {"type": "array", "items": _ALLOCATION},
            "removed_station_ids": {"type": "array", "items": _STR},
        },
    ),
    "site.round_computed.v1": _schema(
        "site.round_computed.v1",
        "The site's balancer finished a round: the limit in force and what was allocated and measured.",
        {
            "site_id": _STR,
            "fence_token": _INT,
            "computed_by": _STR,
            "computed_at": _TIME,
            "limit_now": _NUM,
            "allocated": _NUM,
            "measured": _NUM,
            "charging": _INT,
            "capped": _INT,
        },
    ),
}

TYPES = frozenset(PREFIX + name for name in SCHEMAS)


def full_type(name: str) -> str:
    """``transaction.ended.v1`` -> ``csms.transaction.ended.v1`` (KeyError for a type not catalogued)."""
    if name not in SCHEMAS:
        raise KeyError(f"event type {name!r} is not in the catalogue")
    return PREFIX + name
