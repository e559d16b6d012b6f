"""Reservations as the operations routes answer them, and their list's query parameters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from csms.api.models.fields import Protocol
from csms.api.models.queries import Id64, Limit, Query
from csms.api.models.resources import Page, Resource

# The ReserveNow answers (Active: accepted), then what ended it; Removed is 2.0.1's ReservationStatusUpdate.
ReservationStatus = Literal[
    "Active", "Faulted", "Occupied", "Rejected", "Unavailable", "Cancelled", "Used", "Expired", "Removed"
]


class Reservation(Resource):
    station_id: str
    reservation_id: int
    connector_id: int
    id_tag: str
    parent_id_tag: str | None
    expiry_date: datetime
    status: ReservationStatus
    transaction_id: int | None
    command_id: int | None
    created_at: datetime
    updated_at: datetime
    protocol: Protocol = Field(description="The version of the ReserveNow; its fields follow.")
    evse_id: int = Field(description="2.0.1: the reserved EVSE (0: any); 1.6: 0, see connector_id.")
    id_token_type: str | None = Field(description="2.0.1: idToken.type (id_tag is idToken.idToken).")
    connector_type: str | None = Field(description="2.0.1: the connectorType asked for, if any.")


class ReservationPage(Page[Reservation, int]):
    """Newest first; `next` is the `before` cursor."""


class ReservationQuery(Query):
    limit: Limit = Field(100, description="Page size.")
    before: Id64 | None = Field(None, description="Cursor: the `next` of the previous page.")
    station_id: str | None = Field(None, description="Only this station's items.")
    status: ReservationStatus | None = None


class ReservationLookup(Query):
    station_id: str | None = Field(None, description="The station, if several have this reservationId.")


EVSE_OF = "2.0.1: the EVSE (0: the station); 1.6: 0."


class InstalledProfile(Resource):
    charging_profile_id: int
    connector_id: int
    stack_level: int
    purpose: str
    kind: str
    transaction_id: int | None
    profile: dict[str, Any]
    installed_at: datetime
    protocol: Protocol
    evse_id: int = Field(description=EVSE_OF)
    station_tx_id: str | None = Field(description="2.0.1 TxProfile: the station's transactionId.")


class ConfigurationKey(Resource):
    key: str
    value: str | None
    readonly: bool | None
    known: bool
    reported_at: datetime


class AvailabilityChange(Resource):
    protocol: Protocol
    evse_id: int = Field(description=EVSE_OF)
    connector_id: int = Field(description="1.6: the connector; 2.0.1: one of the EVSE's, or 0.")
    availability: str
    answer: str
    requested_at: datetime


class Job(Resource):
    id: int
    kind: str
    location: str
    file_name: str | None
    status: str
    command_id: int | None
    created_at: datetime
    updated_at: datetime
    protocol: Protocol
    request_id: int | None = Field(description="2.0.1: the requestId its Firmware/LogStatusNotifications repeat.")


class LocalListState(Resource):
    sent_version: int | None
    reported_version: int | None
    update_type: str | None
    synced_at: datetime | None
    reported_at: datetime | None


class CompositeSchedule(Resource):
    evse_id: int = Field(description="2.0.1: the EVSE asked about (0: the station); 1.6: 0.")
    connector_id: int
    duration: int
    result: dict[str, Any]
    received_at: datetime


class RemoteStart(Resource):
    remote_start_id: int
    id_token: str
    id_token_type: str
    evse_id: int | None
    command_id: int | None
    status: str
    transaction_id: str | None
    requested_at: datetime
    linked_at: datetime | None


class StationOperations(Resource):
    charging_profiles: list[InstalledProfile]
    configuration: list[ConfigurationKey]
    availability: list[AvailabilityChange]
    jobs: list[Job]
    local_list: LocalListState | None
    composite_schedules: list[CompositeSchedule]
    remote_starts: list[RemoteStart] = Field(
        description="OCPP 2.0.1 RequestStartTransaction requests, newest first: `status` is the station's answer"
        " (Requested until it comes), `transaction_id` the station's transactionId once its TransactionEvent named"
        " the remoteStartId (`linked_at`)."
    )


class ChargingProfileTemplate(Resource):
    name: str
    profile: Annotated[
        dict[str, Any],
        WithJsonSchema(
            {
                "x-component": "OCPP16.SetChargingProfileRequest.csChargingProfiles",
                "description": "The csChargingProfiles object as it is sent: chargingProfileId filled in.",
            }
        ),
    ]
    updated_by: str
    created_at: datetime
    updated_at: datetime


class ChargingProfileTemplatePage(Page[ChargingProfileTemplate, str]):
    """Ordered by name; `next` is the `after` cursor."""
