"""Sites: the bodies of PUT /api/v1/sites/{id} and .../limit, and the site as GET answers it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, StrictFloat, StrictInt, field_validator, model_validator

from csms.api.models.bodies import Body
from csms.api.models.fields import STATION_ID, Instant
from csms.api.models.resources import Resource
from csms.sites import SITE_ID_PATTERN, SiteSpec, StationSpec

MAX_OVERRIDE_SECONDS = 7 * 86400
Amps = Annotated[StrictFloat, Field(ge=0, le=1e9)]
Limit = Annotated[StrictFloat, Field(gt=0, le=1e9)]
SiteId = Annotated[str, Field(pattern=SITE_ID_PATTERN)]


class SiteStationPut(Body):
    id: Annotated[str, Field(pattern=STATION_ID)]
    min_current: Amps = Field(6.0, description="A per phase the EV needs to charge at all")
    max_current: Annotated[StrictFloat, Field(ge=0.1, le=1e9)] = Field(
        32.0, description="A per phase it may draw at most"
    )
    phases: Literal[1, 2, 3] = 3
    priority: Annotated[StrictInt, Field(ge=0, le=10**9)] = 0

    @model_validator(mode="after")
    def _min_below_max(self) -> SiteStationPut:
        if self.min_current > self.max_current:
            raise ValueError("min_current must not exceed max_current")
        return self

    def spec(self) -> StationSpec:
        return StationSpec(self.id, self.min_current, self.max_current, self.phases, self.priority)


class ScheduleEntry(Body):
    from_: Annotated[str, Field(alias="from", pattern="^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    limit: Limit

    @property
    def minute(self) -> int:
        hours, minutes = self.from_.split(":")
        return int(hours) * 60 + int(minutes)


class SitePut(Body):
    limit: Limit = Field(description="In `unit`: A per phase, or W for the whole site")
    unit: Literal["A", "W"] = "A"
    stations: list[Annotated[str, Field(pattern=STATION_ID)] | SiteStationPut] = Field(
        min_length=1, max_length=1000, description="Station ids or objects; a station belongs to one site at most"
    )
    voltage: Annotated[StrictFloat, Field(ge=1, le=1e9)] = 230.0
    failsafe: Amps | None = Field(None, description="A per station without an allocation (default: even split)")
    schedule: list[ScheduleEntry] | None = Field(
        None, max_length=96, description="Limits by time of day (UTC); before the first entry the last one holds"
    )

    @field_validator("stations")
    @classmethod
    def _once_each(cls, stations: list[str | SiteStationPut]) -> list[str | SiteStationPut]:
        ids = [s if isinstance(s, str) else s.id for s in stations]
        if len(set(ids)) != len(ids):
            raise ValueError("a station is listed twice")
        return stations

    @field_validator("schedule")
    @classmethod
    def _distinct_starts(cls, schedule: list[ScheduleEntry] | None) -> list[ScheduleEntry] | None:
        if schedule and len({entry.from_ for entry in schedule}) != len(schedule):
            raise ValueError("two entries have the same from")
        return schedule

    def spec(self, site_id: str) -> SiteSpec:
        stations = tuple(StationSpec(s) if isinstance(s, str) else s.spec() for s in self.stations)
        schedule = tuple(sorted((entry.minute, entry.limit) for entry in self.schedule or ()))
        return SiteSpec(site_id, self.limit, self.unit, stations, self.voltage, self.failsafe, schedule)


class SiteLimitPut(Body):
    """A live override in the site's unit, with exactly one of duration and expires_at; when it expires the site
    falls back to its schedule (or limit)."""

    limit: Limit
    duration: Annotated[StrictFloat, Field(ge=1, le=MAX_OVERRIDE_SECONDS)] | None = Field(None, description="seconds")
    expires_at: Instant | None = Field(None, description="with an offset, within 7 days")

    @model_validator(mode="after")
    def _one_expiry(self) -> SiteLimitPut:
        if (self.duration is None) == (self.expires_at is None):
            raise ValueError("give exactly one of duration (seconds) and expires_at (RFC 3339 with an offset)")
        return self

    def until(self, now: datetime) -> datetime:
        """When the override ends (ValueError if expires_at is not within the next 7 days)."""
        if self.duration is not None:
            return now + timedelta(seconds=self.duration)
        assert self.expires_at is not None
        if not now < self.expires_at <= now + timedelta(seconds=MAX_OVERRIDE_SECONDS):
            raise ValueError("must be in the future, within 7 days")
        return self.expires_at.astimezone(UTC)


class SiteStation(Resource):
    id: str
    min_current: float
    max_current: float
    phases: int
    priority: int
    failsafe: float | None
    allocation: float | None
    pending: float | None
    transaction_id: int | None
    stuck: bool
    measured: float | None


class SiteRound(Resource):
    """The computing replica's last round (null until the first)."""

    computed_by: str
    computed_at: datetime
    limit_now: float
    allocated: float
    measured: float
    charging: int
    capped: int
    reallocated_at: datetime | None


class SiteScheduleEntry(Resource):
    from_: str = Field(alias="from")
    limit: float


class SiteOverride(Resource):
    limit: float
    expires_at: datetime


class Site(Resource):
    id: str
    limit: float
    unit: Literal["A", "W"]
    voltage: float
    failsafe: float | None
    schedule: list[SiteScheduleEntry]
    override: SiteOverride | None
    round: SiteRound | None
    stations: list[SiteStation]
