"""A site's definition: its stations, limit, schedule and override (the API checks the bodies it is made from)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

SITE_ID_PATTERN = r"^[A-Za-z0-9._~-]{1,64}$"


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
