"""The exporters' observer: which replica exports each sink, how much, how late, how often it failed."""

from __future__ import annotations

from csms.observability.metrics import Metrics


class ExportMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def active(self, sink: str, holding: bool) -> None:
        self._m.export_active.labels(sink).set(1 if holding else 0)

    def exported(self, sink: str, count: int, lag_seconds: float) -> None:
        if count:
            self._m.events_exported.labels(sink).inc(count)
        self._m.export_lag.labels(sink).set(lag_seconds)

    def failed(self, sink: str) -> None:
        self._m.export_failures.labels(sink).inc()
