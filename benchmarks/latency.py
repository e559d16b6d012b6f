"""A sparse log-bucketed latency histogram: constant memory however many samples, and mergeable across
simulator processes (a list of raw samples at 10k msg/s would grow without bound and cost a sort per report).
"""

from __future__ import annotations

import math
from typing import Any

_PER_E = 100  # buckets per factor e: ~1 % relative resolution


class LatencyHistogram:
    __slots__ = ("buckets", "count", "max_s", "total_s")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total_s = 0.0
        self.max_s = 0.0

    def record(self, seconds: float) -> None:
        micros = seconds * 1e6
        index = int(math.log(micros) * _PER_E) if micros >= 1.0 else 0
        self.buckets[index] = self.buckets.get(index, 0) + 1
        self.count += 1
        self.total_s += seconds
        if seconds > self.max_s:
            self.max_s = seconds

    def merge(self, other: LatencyHistogram) -> None:
        for index, n in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + n
        self.count += other.count
        self.total_s += other.total_s
        self.max_s = max(self.max_s, other.max_s)

    def percentile(self, fraction: float) -> float:
        """Seconds below which `fraction` of the samples fall (bucket midpoint); 0.0 when empty."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(fraction * self.count))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return min(math.exp((index + 0.5) / _PER_E) / 1e6, self.max_s)
        return self.max_s

    def summary_ms(self) -> dict[str, float]:
        def ms(seconds: float) -> float:
            return round(seconds * 1000, 3)

        return {
            "count": self.count,
            "mean_ms": ms(self.total_s / self.count) if self.count else 0.0,
            "p50_ms": ms(self.percentile(0.50)),
            "p90_ms": ms(self.percentile(0.90)),
            "p99_ms": ms(self.percentile(0.99)),
            "p999_ms": ms(self.percentile(0.999)),
            "max_ms": ms(self.max_s),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "buckets": {str(k): v for k, v in self.buckets.items()},
            "count": self.count,
            "total_s": self.total_s,
            "max_s": self.max_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LatencyHistogram:
        hist = cls()
        hist.buckets = {int(k): int(v) for k, v in data["buckets"].items()}
        hist.count = int(data["count"])
        hist.total_s = float(data["total_s"])
        hist.max_s = float(data["max_s"])
        return hist
