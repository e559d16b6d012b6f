"""The coordinator's observer: claims, takeovers, lease state, leadership and etcd latency as metrics."""

from __future__ import annotations

from cluster.observer import ClaimOutcome, LeaseState
from csms.observability.metrics import Metrics


class ClusterMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def claim_finished(self, seconds: float, outcome: ClaimOutcome) -> None:
        self._m.claims.labels(outcome).inc()
        self._m.claim_seconds.observe(seconds)
        if outcome == "takeover":
            self._m.takeovers.inc()

    def claim_lost(self, station_id: str) -> None:
        self._m.claims_lost.inc()

    def lease_state(self, state: LeaseState) -> None:
        self._m.lease_up.set(1 if state == "live" else 0)

    def leader(self, is_leader: bool) -> None:
        self._m.leader.set(1 if is_leader else 0)

    def etcd_request(self, path: str, seconds: float, ok: bool) -> None:
        operation = path.rsplit("/v3/", 1)[-1]
        self._m.etcd_seconds.labels(operation).observe(seconds)
        if not ok:
            self._m.etcd_errors.labels(operation).inc()
