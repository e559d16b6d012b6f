"""Inline SVG line charts (no script, no library): a session's energy and power over time."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    path: str  # SVG path data in a 0..width x 0..height box
    width: int
    height: int
    low: float
    high: float
    first: str
    last: str
    points: int
    latest: float | None


def line_chart(
    title: str, unit: str, points: list[tuple[datetime, float]], *, width: int = 600, height: int = 160
) -> Chart:
    if not points:
        return Chart(title, unit, "", width, height, 0, 0, "", "", 0, None)
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    span_t = (t1 - t0) or 1.0
    span_v = (high - low) or 1.0
    coords = [
        (round((t.timestamp() - t0) / span_t * width, 1), round(height - (v - low) / span_v * height, 1))
        for t, v in points
    ]
    path = "M" + " L".join(f"{x},{y}" for x, y in coords)
    return Chart(
        title,
        unit,
        path,
        width,
        height,
        low,
        high,
        points[0][0].isoformat(),
        points[-1][0].isoformat(),
        len(points),
        points[-1][1],
    )


def session_charts(series: list[dict[str, Any]]) -> list[Chart]:
    """Energy (Wh) and power (W); power derived from energy steps when the station reports none."""
    energy = [(s["at"], s["value"]) for s in series if s["measurand"] == "Energy.Active.Import.Register"]
    power = [(s["at"], s["value"]) for s in series if s["measurand"] == "Power.Active.Import"]
    if not power and len(energy) > 1:
        for (t0, e0), (t1, e1) in itertools.pairwise(energy):
            seconds = (t1 - t0).total_seconds()
            if seconds > 0:
                power.append((t1, max(0.0, (e1 - e0) * 3600 / seconds)))
    return [line_chart("Energy", "Wh", energy), line_chart("Power", "W", power)]
