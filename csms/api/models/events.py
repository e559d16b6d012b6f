"""The event stream and the exporters' state, as /api/v1/events and /api/v1/exports answer them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import Field, RootModel, StrictInt

from csms.api.models.bodies import Body
from csms.api.models.fields import INT64_MAX
from csms.api.models.queries import Id64, Limit, Query
from csms.api.models.resources import Page, Resource


class CloudEvent(Resource):
    """A CloudEvents 1.0 event (JSON format)."""

    specversion: Literal["1.0"]
    id: str = Field(description="Stable and unique: dedupe on it.")
    source: str = Field(description="This installation (CSMS_EXPORT_SOURCE).")
    type: str = Field(description="csms.<aggregate>.<change>.v<N>; schemas at /api/v1/events/schemas.")
    subject: str | None = Field(description="The station id.")
    time: datetime
    datacontenttype: Literal["application/json"]
    sequence: str = Field(description="This event's cursor (pass as `after` to read on from here).")
    data: dict[str, Any]


class EventPage(Resource):
    items: list[CloudEvent]
    next: str


class EventSchemas(RootModel[dict[str, dict[str, Any]]]):
    """The JSON Schema of each event type's `data`, by type."""


class ExportSink(Resource):
    sink: str
    cursor: str
    exported: int
    updated_at: datetime
    lag_events: int
    lag_seconds: float
    dead_letters: int


class ExportSinks(Resource):
    items: list[ExportSink]


class DeadLetter(Resource):
    id: int
    event_id: str
    event: CloudEvent
    attempts: int
    last_error: str
    failed_at: datetime
    replayed_at: datetime | None
    replay_requested: bool


class DeadLetterPage(Page[DeadLetter, int]):
    """Ordered by id; `next` is the `after` cursor."""


class ReplayRequest(Body):
    ids: list[Annotated[StrictInt, Interval(ge=0, le=INT64_MAX)]] | None = Field(
        None, max_length=1000, description="Dead letters to resend; absent: every one not yet replayed."
    )


class ReplayResult(Resource):
    requested: int


class EventQuery(Query):
    after: str | None = Field(
        None, description="Cursor: `next` of the previous page or an event's `sequence`.", examples=["0-0"]
    )
    type: str | None = Field(None, description="Only these types (comma-separated, with or without 'csms.').")
    station_id: str | None = Field(None, description="Only this station's items.")
    limit: Limit = Field(100, description="Page size.")


class DeadLetterQuery(Query):
    limit: Limit = Field(100, description="Page size.")
    after: Id64 = Field(0, description="Cursor: `next`.")
