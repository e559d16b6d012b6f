"""Request bodies: the one definition of what each write accepts (validation and /openapi.json both use it)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from csms.api.models.fields import Instant, Text, Wh

BootStatus = Literal["Accepted", "Pending", "Rejected"]
IdTagStatus = Literal["Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"]
# OCPP 2.0.1 IdTokenEnumType (csms.authorization.TOKEN_TYPES; a unit test keeps the two equal).
TokenType = Literal["Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress", "NoAuthorization"]


class Body(BaseModel):
    """A JSON object body: unknown fields are a 422, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StationPut(Body):
    """Only the fields given are changed; unknown fields are rejected (422)."""

    password: Annotated[str, Field(min_length=8, max_length=40)] | None = Field(
        None, description="HTTP Basic password of security profile 1; null removes it."
    )
    boot_status: BootStatus | None = Field(
        None, description="The BootNotification answer to force; null: the CSMS decides."
    )
    description: Annotated[Text, Field(max_length=500)] | None = None
    security_profile: Annotated[StrictInt, Field(ge=0, le=3)] | None = Field(
        None,
        description="The lowest OCPP security profile the station may connect with (0 none, 1 Basic, 2 TLS +"
        " Basic, 3 TLS with a station certificate); null: 1 with a password, else 0. Stored as given (use POST"
        " .../security-profile to have the station switch first). 1 and 2 need a password (422).",
    )


class IdTagPut(Body):
    """Replaces the id tag (a field left out takes its default); unknown fields: 422."""

    status: IdTagStatus = "Accepted"
    expiry_date: Instant | None = None
    parent_id_tag: Annotated[Text, Field(min_length=1, max_length=36)] | None = None
    type: TokenType | None = Field(
        None, description="OCPP 2.0.1 IdTokenEnumType the token must be presented with; null: any."
    )


class TransactionClose(Body):
    """Unknown fields are rejected (422)."""

    reason: Annotated[Text, Field(min_length=1, max_length=500, pattern=r"\S")] = Field(
        description="Why (recorded with who and when)."
    )
    meter_stop: Wh | None = Field(
        None,
        description="Wh, at least meter_start (422 otherwise); default: the last plausible energy reading, else"
        " meter_start.",
    )


class LocalListSync(Body):
    update_type: Literal["Full", "Differential"] = "Full"
