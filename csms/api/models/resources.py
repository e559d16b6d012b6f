"""Response models of the main resources: what /openapi.json promises each answer looks like.

Handlers still answer with the dicts the domain modules return (validating every answer would cost latency for
no client's benefit); the fuzz and documented-shape tests check the answers against these models' schemas.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from csms.api.models.bodies import BootStatus, IdTagStatus
from csms.api.models.fields import Protocol


class Resource(BaseModel):
    """A closed object: every field is always present, nothing else is."""

    model_config = ConfigDict(extra="forbid")


Item = TypeVar("Item")
Cursor = TypeVar("Cursor")


class Page(Resource, Generic[Item, Cursor]):
    items: list[Item]
    next: Cursor | None


ErrorCode = Literal[
    "bad_request",
    "bad_json",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "too_large",
    "invalid",
    "ambiguous",
    "internal_error",
    "error",
]


class ErrorDetail(Resource):
    status: int = Field(ge=400, le=599)
    code: ErrorCode
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class Error(Resource):
    """Every failure: `status` repeats the HTTP status, `code` is stable for programs, `message` names the field
    and what was wrong, `details` (optional) carries structured hints."""

    error: ErrorDetail


class Station(Resource):
    id: str
    boot_status: BootStatus | None
    description: str
    auto_registered: bool
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    iccid: str | None
    imsi: str | None
    meter_type: str | None
    meter_serial: str | None
    last_boot_status: str | None
    last_boot_at: datetime | None
    last_seen_at: datetime | None
    created_at: datetime
    updated_at: datetime
    has_password: bool
    connected: bool
    owner_node: str | None
    protocol: Protocol | None = Field(description="The subprotocol of the station's latest connection.")
    last_boot_reason: str | None = Field(description="OCPP 2.0.1 BootReason of the last boot (null for 1.6).")


class Connector(Resource):
    evse_id: int | None = Field(description="OCPP 2.0.1 EVSE (connectors numbered per EVSE); null for 1.6.")
    connector_id: int
    status: str
    error_code: str
    info: str | None
    vendor_id: str | None
    vendor_error_code: str | None
    station_timestamp: datetime | None
    received_at: datetime
    charging: bool = Field(
        description="Energy is flowing: 1.6 status Charging, or (2.0.1, status Occupied) the active transaction's"
        " chargingState is Charging."
    )


class StationWithConnectors(Station):
    connectors: list[Connector]


class StationSecurity(Resource):
    security_profile: Literal[0, 1, 2, 3]
    security_profile_explicit: bool
    password_rotation: Literal["sent", "accepted", "rejected", "completed"] | None
    password_rotated_at: datetime | None


class Notification(Resource):
    kind: str
    status: str
    received_at: datetime


TransactionFlag = Literal[
    "start_in_future",
    "stop_in_future",
    "stop_before_start",
    "meter_stop_below_start",
    "missing_events",
    "conflicting_events",
]


class Transaction(Resource):
    id: int
    station_id: str
    connector_id: int
    id_tag: str | None = Field(description="The idTag (1.6) / idToken (2.0.1); a 2.0.1 one may be absent.")
    id_tag_status: str | None
    reservation_id: int | None
    remote_started: bool
    meter_start: int | None = Field(description="2.0.1: the Transaction.Begin (else first) energy reading.")
    start_timestamp: datetime
    start_received_at: datetime
    meter_stop: int | None
    stop_timestamp: datetime | None
    stop_received_at: datetime | None
    stop_reason: str | None
    stop_id_tag: str | None
    energy_wh: int | None = Field(
        description="meterStop - meterStart of a finished transaction (null while active, or if meterStop is"
        " below meterStart)."
    )
    energy_so_far_wh: int | None = Field(
        description="While active: the last plausible energy register reading - meterStart (null before the"
        " first one); when finished: energy_wh."
    )
    flags: list[TransactionFlag] = Field(
        description="Plausible-but-odd facts, stored as sent and shown here: start_in_future / stop_in_future"
        " (station time over a day ahead of ours), stop_before_start, meter_stop_below_start, missing_events"
        " (2.0.1: seqNos missing from an ended transaction), conflicting_events (2.0.1: a seqNo repeated with"
        " different content; see conflicting_events on the transaction)."
    )
    operator_closed_by: str | None
    operator_close_reason: str | None
    operator_closed_at: datetime | None
    active: bool
    protocol: Protocol
    station_tx_id: str | None = Field(description="OCPP 2.0.1: the station's own transactionId (null for 1.6).")
    evse_id: int | None
    id_token_type: str | None
    charging_state: str | None
    trigger_reason: str | None = Field(description="2.0.1: the triggerReason of the latest event (by seqNo).")
    remote_start_id: int | None
    offline: bool = Field(description="2.0.1: some event was queued while the station was offline.")
    event_count: int | None
    missing_seq_nos: int | None


class StationDetail(StationWithConnectors, StationSecurity):
    open_transactions: list[Transaction]
    notifications: list[Notification]


class MeterSample(Resource):
    connector_id: int
    station_timestamp: datetime
    received_at: datetime
    source: Literal["MeterValues", "StopTransaction", "TransactionEvent"]
    measurand: str
    phase: str
    unit: str
    context: str
    location: str
    format: str
    value: str
    flag: Literal["after_stop", "below_meter_start", "connector_mismatch", "future_timestamp"] | None = Field(
        description="null: plausible. Otherwise kept but left out of energy: after_stop (a MeterValues timestamped"
        " after the station's stop or above meterStop), below_meter_start, connector_mismatch (not the"
        " transaction's connector), future_timestamp (over a day ahead of our clock)."
    )


class ConflictingEvent(Resource):
    seq_no: int
    received_at: datetime
    content: dict[str, Any]


class TransactionDetail(Transaction):
    meter_values: list[MeterSample]
    events: list[dict[str, Any]] = Field(
        default_factory=list,
        description="2.0.1 only: the TransactionEvents kept (one per seqNo, the first received), oldest seqNo"
        " first; the transaction is derived from them.",
    )
    conflicting_events: list[ConflictingEvent] = Field(
        default_factory=list,
        description="2.0.1 only: repeats of a kept seqNo whose content differed (kept once each, at most 100, not"
        " used for the transaction): what the station sent, for investigation.",
    )


class IdTag(Resource):
    id_tag: str
    status: IdTagStatus
    expiry_date: datetime | None
    parent_id_tag: str | None
    type: str | None


class StationEvent(Resource):
    id: int
    action: str
    summary: str | None = Field(description="The report's status/type field, when it has one.")
    payload: dict[str, Any] = Field(description="The request as the station sent it.")
    received_at: datetime


class ClusterNode(Resource):
    node_id: str
    address: str
    version: str
    started_at: float
    stations: int


class Cluster(Resource):
    node_id: str
    leader: str | None
    healthy: bool
    nodes: list[ClusterNode]


class Health(Resource):
    status: Literal["alive"]


class Readiness(Resource):
    ready: bool
    checks: dict[str, bool]


class StationPage(Page[Station, str]):
    """Ordered by id; `next` is the `after` cursor of the next page."""


class TransactionPage(Page[Transaction, int]):
    """Newest first; `next` is the `before` cursor."""


class IdTagPage(Page[IdTag, str]):
    """Ordered by id tag; `next` is the `after` cursor."""


class StationEventPage(Page[StationEvent, int]):
    """Newest first; `next` is the `before` cursor."""
