"""A site's definition as the API takes it, checked into plain values (ValueError with a readable message)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

MAX_STATIONS = 1000
MAX_OVERRIDE_SECONDS = 7 * 86400
_TIME_OF_DAY = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
SITE_ID_PATTERN = r"^[A-Za-z0-9._~-]{1,64}$"
STATION_ID_PATTERN = r"^[A-Za-z0-9._~-]{1,48}$"  # as the stations module names them
_ID = re.compile(SITE_ID_PATTERN)
_STATION_ID = re.compile(STATION_ID_PATTERN)


@dataclass(frozen=True)
class StationSpec:
    """A managed station: what it may draw (A per phase), on how many phases, and how it ranks."""

    station_id: str
    min_current: float = 6.0
    max_current: float = 32.0
    phases: int = 3
    priority: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.station_id,
            "min_current": self.min_current,
            "max_current": self.max_current,
            "phases": self.phases,
            "priority": self.priority,
        }


@dataclass(frozen=True)
class SiteSpec:
    site_id: str
    limit: float
    unit: str  # "A" (per phase) or "W"
    stations: tuple[StationSpec, ...]
    voltage: float = 230.0
    failsafe: float | None = None  # A per station; None: the limit split evenly
    schedule: tuple[tuple[int, float], ...] = ()  # (minute of the day UTC, limit), sorted
    override_limit: float | None = None
    override_until: datetime | None = None

    def limit_at(self, now: datetime) -> float:
        """The override until it expires, else the time-of-day schedule's entry in effect, else the limit."""
        if self.override_limit is not None and self.override_until is not None and now < self.override_until:
            return self.override_limit
        if not self.schedule:
            return self.limit
        minute = now.hour * 60 + now.minute
        current = self.schedule[-1][1]  # before the first entry of the day: the last one of yesterday
        for start, limit in self.schedule:
            if start <= minute:
                current = limit
        return current

    def weight(self, station: StationSpec) -> float:
        """Budget units one ampere of this station costs: A limits are per phase, W limits count every phase."""
        return 1.0 if self.unit == "A" else self.voltage * station.phases


def _number(body: dict[str, Any], key: str, *, default: float | None = None, minimum: float = 0.0) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number")
    if value < minimum or value > 1e9:
        raise ValueError(f"{key} must be between {minimum:g} and 1e9")
    return float(value)


def _station(raw: Any, index: int) -> StationSpec:
    if isinstance(raw, str):
        raw = {"id": raw}
    if not isinstance(raw, dict):
        raise ValueError(f"stations[{index}] must be a station id or an object with id")
    unknown = set(raw) - {"id", "min_current", "max_current", "phases", "priority"}
    if unknown:
        raise ValueError(f"stations[{index}] has unknown fields: {', '.join(sorted(unknown))}")
    station_id = raw.get("id")
    if not isinstance(station_id, str) or not _STATION_ID.match(station_id):
        raise ValueError(f"stations[{index}].id must be a station id (1-48 of A-Z a-z 0-9 . _ ~ -)")
    spec = StationSpec(
        station_id,
        min_current=_number(raw, "min_current", default=6.0),
        max_current=_number(raw, "max_current", default=32.0, minimum=0.1),
        phases=int(_number(raw, "phases", default=3, minimum=1)),
        priority=int(_number(raw, "priority", default=0)),
    )
    if spec.phases not in (1, 2, 3) or raw.get("phases", 3) != spec.phases:
        raise ValueError(f"stations[{index}].phases must be 1, 2 or 3")
    if spec.min_current > spec.max_current:
        raise ValueError(f"stations[{index}].min_current must not exceed max_current")
    return spec


def _schedule(raw: Any) -> tuple[tuple[int, float], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > 96:
        raise ValueError("schedule must be a list of at most 96 {from: HH:MM, limit} entries")
    entries = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or set(entry) != {"from", "limit"}:
            raise ValueError(f"schedule[{i}] must be an object with from (HH:MM, UTC) and limit")
        match = _TIME_OF_DAY.match(str(entry["from"]))
        if not match:
            raise ValueError(f"schedule[{i}].from must be HH:MM (UTC)")
        entries.append((int(match[1]) * 60 + int(match[2]), _number(entry, "limit", minimum=0.1)))
    if len({start for start, _ in entries}) != len(entries):
        raise ValueError("schedule has two entries with the same from")
    return tuple(sorted(entries))


def parse_site(site_id: str, body: Any) -> SiteSpec:
    """The PUT /api/v1/sites/{id} body."""
    if not _ID.match(site_id):
        raise ValueError("site id must be 1-64 of A-Z a-z 0-9 . _ ~ -")
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    unknown = set(body) - {"limit", "unit", "stations", "voltage", "failsafe", "schedule"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    if "limit" not in body:
        raise ValueError("limit is required")
    unit = body.get("unit", "A")
    if unit not in ("A", "W"):
        raise ValueError("unit must be A (per phase) or W")
    stations = body.get("stations")
    if not isinstance(stations, list) or not 1 <= len(stations) <= MAX_STATIONS:
        raise ValueError(f"stations must be a list of 1 to {MAX_STATIONS} stations")
    specs = tuple(_station(raw, i) for i, raw in enumerate(stations))
    if len({s.station_id for s in specs}) != len(specs):
        raise ValueError("a station is listed twice")
    return SiteSpec(
        site_id,
        limit=_number(body, "limit", minimum=0.1),
        unit=unit,
        stations=specs,
        voltage=_number(body, "voltage", default=230.0, minimum=1),
        failsafe=None if body.get("failsafe") is None else _number(body, "failsafe"),
        schedule=_schedule(body.get("schedule")),
    )


def parse_override(body: Any, now: datetime) -> tuple[float, datetime]:
    """The PUT /api/v1/sites/{id}/limit body: {"limit": n, "duration": seconds} or {"limit", "expires_at"}."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    unknown = set(body) - {"limit", "duration", "expires_at"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    if "limit" not in body:
        raise ValueError("limit is required")
    limit = _number(body, "limit", minimum=0.1)
    if ("duration" in body) == ("expires_at" in body):
        raise ValueError("give exactly one of duration (seconds) and expires_at (ISO 8601 with offset)")
    if "duration" in body:
        seconds = _number(body, "duration", minimum=1)
        if seconds > MAX_OVERRIDE_SECONDS:
            raise ValueError(f"duration must be at most {MAX_OVERRIDE_SECONDS} seconds")
        return limit, now + timedelta(seconds=seconds)
    try:
        until = datetime.fromisoformat(str(body["expires_at"]))
    except ValueError:
        raise ValueError("expires_at must be an ISO 8601 timestamp with an offset") from None
    if until.tzinfo is None:
        raise ValueError("expires_at must be an ISO 8601 timestamp with an offset")
    if not now < until <= now + timedelta(seconds=MAX_OVERRIDE_SECONDS):
        raise ValueError("expires_at must be in the future, within 7 days")
    return limit, until
