"""Load management's observer: per-site gauges, set by the replica computing the site (and dropped when the
site moves away, so only one replica reports it)."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Protocol

from csms.observability.metrics import Metrics


class SiteRound(Protocol):
    @property
    def limit_now(self) -> float: ...
    @property
    def allocated(self) -> float: ...
    @property
    def measured(self) -> float: ...
    @property
    def charging(self) -> int: ...
    @property
    def capped(self) -> int: ...
    @property
    def reallocated_at(self) -> datetime | None: ...
    @property
    def seconds(self) -> float: ...


class SiteMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self._gauges = (
            metrics.site_limit,
            metrics.site_allocated,
            metrics.site_measured,
            metrics.site_charging,
            metrics.site_capped,
            metrics.site_reallocated,
        )

    def round(self, site_id: str, r: SiteRound) -> None:
        m = self._m
        m.site_limit.labels(site_id).set(r.limit_now)
        m.site_allocated.labels(site_id).set(r.allocated)
        m.site_measured.labels(site_id).set(r.measured)
        m.site_charging.labels(site_id).set(r.charging)
        m.site_capped.labels(site_id).set(r.capped)
        if r.reallocated_at is not None:
            m.site_reallocated.labels(site_id).set(r.reallocated_at.timestamp())
            m.site_round_seconds.observe(r.seconds)

    def forget(self, site_id: str) -> None:
        for gauge in self._gauges:
            with contextlib.suppress(KeyError):
                gauge.remove(site_id)
