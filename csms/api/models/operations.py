"""Reservations as the operations routes answer them, and their list's query parameters."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

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
