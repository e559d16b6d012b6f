"""The device model's events (csms.outbox catalogue), written in the same write as the rows they describe.

A NotifyReport part is one event with its counts, not its variables (a base report has thousands; consumers
read them from the API). Values a station confirmed or accepted are listed, since each is an operator's act.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from csms.outbox import Event, event_statement
from csms.storage import Statement


def _event(name: str, station_id: str, dedup_key: str | None = None, **data: Any) -> Statement:
    event = Event(name, "device_model", station_id, station_id, {"station_id": station_id, **data}, dedup_key)
    return event_statement(event)


def report_received(
    station_id: str, request_id: int, seq_no: int, tbc: bool, variables: int, at: datetime
) -> Statement:
    """Keyed by the part's identity and generatedAt: a retried part emits nothing, a new report with a reused
    requestId does."""
    key = f"dmr:{request_id}:{seq_no}:{at.isoformat()}"
    return _event(
        "device_model.report_received.v1",
        station_id,
        key,
        request_id=request_id,
        seq_no=seq_no,
        tbc=tbc,
        variables=variables,
        generated_at=at.isoformat(),
    )


def variables_updated(station_id: str, source: str, rows: list[tuple[Any, ...]]) -> Statement:
    """From the rows ``entries.value_row`` built: one entry per attribute stored."""
    variables = [
        {
            "component": component,
            "component_instance": component_instance,
            "evse_id": evse_id,
            "connector_id": connector_id,
            "variable": variable,
            "variable_instance": variable_instance,
            "attribute_type": kind,
            "value": attribute["value"],
            "reboot_required": attribute["reboot_required"],
        }
        for (
            _,
            component,
            component_instance,
            evse_id,
            connector_id,
            variable,
            variable_instance,
            _,
            attributes,
            _,
        ) in rows
        for kind, attribute in attributes.items()
    ]
    return _event("device_model.variables_updated.v1", station_id, source=source, variables=variables)
