"""Station security: password rotation, profile raises, certificates and the security event log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StrictInt

from csms.api.models.bodies import Body
from csms.api.models.commands import CommandRecord
from csms.api.models.queries import Id64, Limit, Query
from csms.api.models.resources import Page, Resource

CaMode = Literal["built-in", "external"]
CertificateRequestStatus = Literal["pending", "signed", "delivered", "failed"]


class SecurityEvent(Resource):
    id: int
    station_id: str | None
    origin: Literal["station", "csms"]
    type: str
    tech_info: str | None
    occurrences: int
    occurred_at: datetime
    received_at: datetime


class SecurityEventPage(Page[SecurityEvent, int]):
    """Newest first; `next` is the `before` cursor."""


class SecurityEventQuery(Query):
    limit: Limit = Field(100, description="Page size.")
    before: Id64 | None = Field(None, description="Cursor: the `next` of the previous page.")
    station_id: str | None = Field(None, description="Only this station's items.")
    origin: Literal["station", "csms"] | None = Field(None, description="Who noticed it.")
    type: str | None = Field(None, description="Only this event type.")


class PasswordRotation(Resource):
    """accepted: the station took the new password (it is never returned). Until the station connects with it,
    the old password keeps working; then only the new one does."""

    accepted: bool
    station_id: str
    command: CommandRecord


class ProfileChangeBody(Body):
    security_profile: Annotated[StrictInt, Field(ge=1, le=3)]


class ProfileChange(Resource):
    """failed_step: the action the station refused or did not answer (2.0.1: SetNetworkProfile, SetVariables or
    Reset); `command` is that command, or the last one when all were accepted."""

    accepted: bool
    station_id: str
    command: CommandRecord
    security_profile: int
    failed_step: str | None


class Certificate(Resource):
    fingerprint: str
    serial_number: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    created_at: datetime


class CertificateList(Resource):
    items: list[Certificate]


class CertificateRenewal(Resource):
    ca_mode: CaMode
    command: CommandRecord


class CertificateRequest(Resource):
    id: int
    station_id: str
    csr_pem: str
    status: CertificateRequestStatus
    certificate_pem: str | None
    detail: str | None
    created_at: datetime
    updated_at: datetime


class CertificateRequestList(Resource):
    ca_mode: CaMode
    items: list[CertificateRequest]


class CertificateRequestQuery(Query):
    limit: Limit = Field(100, description="Page size.")
    status: CertificateRequestStatus | None = Field(None, description="Only this status.")


class CertificateImport(Body):
    certificate_chain: Annotated[str, Field(min_length=1, max_length=10_000)] = Field(
        description="PEM text (CertificateSigned.req certificateChain limit)"
    )


class CertificateDelivery(Resource):
    command: CommandRecord
