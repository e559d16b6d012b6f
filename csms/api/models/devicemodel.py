"""An OCPP 2.0.1 station's device model as the API shows it, in OCPP's own terms (hence the camelCase inside)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from csms.api.models.resources import Page, Resource


class Evse(Resource):
    id: int
    connectorId: int | None = None


class Component(Resource):
    name: str
    instance: str | None = None
    evse: Evse | None = None


class Variable(Resource):
    name: str
    instance: str | None = None


class Characteristics(Resource):
    unit: str | None = None
    dataType: str
    minLimit: float | None = None
    maxLimit: float | None = None
    valuesList: str | None = None
    supportsMonitoring: bool


class Attribute(Resource):
    type: Literal["Actual", "Target", "MinSet", "MaxSet"]
    value: str | None = None
    mutability: Literal["ReadOnly", "WriteOnly", "ReadWrite"] | None = None
    persistent: bool | None = None
    constant: bool | None = None
    source: Literal["NotifyReport", "GetVariables", "SetVariables"]
    reboot_required: bool
    updated_at: datetime


class DeviceVariable(Resource):
    """One variable of an OCPP 2.0.1 station's device model, in OCPP's own terms. `attributes` (Actual, Target,
    MinSet, MaxSet) say where their value last came from (`source`): a NotifyReport, a GetVariables answer or a
    SetVariables the station accepted (`reboot_required`: it answered RebootRequired)."""

    id: int
    component: Component
    variable: Variable
    characteristics: Characteristics | None
    attributes: list[Attribute]
    report_request_id: int | None
    updated_at: datetime


class DeviceVariablePage(Page[DeviceVariable, int]):
    """In the order first reported; `next` is the `after` cursor."""


class DeviceModelReport(Resource):
    """A device-model report by requestId: the GetBaseReport/GetReport command that asked for it (action and
    command_id are null for a report nobody here asked for), the station's answer, and the NotifyReport parts
    received so far; complete once the part with tbc = false and every part before it arrived."""

    request_id: int
    action: Literal["GetBaseReport", "GetReport"] | None
    command_id: int | None
    request: dict[str, Any] | None
    answer: str | None
    parts: int
    last_seq_no: int | None
    complete: bool
    variables: int
    generated_at: datetime | None
    requested_at: datetime | None
    updated_at: datetime


class DeviceModelReports(Resource):
    items: list[DeviceModelReport]
