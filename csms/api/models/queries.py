"""Query parameters of the list routes: parsed (400 naming the parameter) and documented from one model each."""

from __future__ import annotations

from typing import Annotated, get_args

from annotated_types import Interval
from pydantic import BaseModel, ConfigDict, Field

from csms.api.command_status import CommandStatus
from csms.api.models.fields import INT32_MAX, INT64_MAX, Digits, Instant, QueryBool

Limit = Annotated[int, Interval(ge=1, le=1000), Digits]
Id32 = Annotated[int, Interval(ge=0, le=INT32_MAX), Digits]
Id64 = Annotated[int, Interval(ge=0, le=INT64_MAX), Digits]
AFTER = "Cursor: the `next` of the previous page (items sort after it)."
BEFORE = "Cursor: the `next` of the previous page (ids below it)."
SINCE = "Only items from this instant on (RFC 3339; without an offset it is taken as UTC)."


class Query(BaseModel):
    """Unknown query parameters are ignored (a proxy or a cache buster may add some)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class AfterPage(Query):
    limit: Limit = Field(100, description="Page size.")
    after: str = Field("", description=AFTER)


class StationEventQuery(Query):
    action: Annotated[str, Field(pattern="^[A-Za-z0-9]{1,64}$")] | None = Field(
        None, description="Only this OCPP action (e.g. SecurityEventNotification)."
    )
    limit: Limit = Field(100, description="Page size.")
    before: Id64 | None = Field(None, description="Cursor: the `next` of the previous page.")


class TransactionQuery(Query):
    limit: Limit = Field(100, description="Page size.")
    before: Id32 | None = Field(None, description=BEFORE)
    station_id: str | None = Field(None, description="Only this station's items.")
    id_tag: Annotated[str, Field(min_length=1, max_length=36)] | None = Field(None, description="Only this id tag's.")
    active: QueryBool | None = Field(None, description="Only running (true) or finished (false) transactions.")
    since: Instant | None = Field(None, description=SINCE)


class CommandQuery(Query):
    limit: Limit = Field(100, description="Page size.")
    before: Id64 | None = Field(None, description=BEFORE)
    station_id: str | None = Field(None, description="Only this station's items.")
    action: str | None = Field(None, description="Only this OCPP action.")
    status: str | None = Field(None, description=f"Only this status: {', '.join(get_args(CommandStatus))}.")
    since: Instant | None = Field(None, description=SINCE)


class DeviceVariableQuery(Query):
    component: Annotated[str, Field(min_length=1, max_length=50)] | None = Field(
        None, description="Only this component (exact name)."
    )
    variable: Annotated[str, Field(min_length=1, max_length=50)] | None = Field(
        None, description="Only this variable (exact name)."
    )
    limit: Limit = Field(100, description="Page size.")
    after: Id64 | None = Field(None, description="Cursor.")


class CommandSendQuery(Query):
    is_async: QueryBool = Field(False, alias="async", description="Answer 202 at once (true/1/yes or false/0/no).")
    timeout: Annotated[float, Field(gt=0, le=300)] | None = Field(
        None, description="Seconds to wait for the station (default: the replica's call timeout)."
    )
