"""Metrics seam: the coordinator reports through this; csms.observability provides the Prometheus side."""

from __future__ import annotations

from typing import Literal, Protocol

ClaimOutcome = Literal["created", "takeover", "superseded", "error"]
LeaseState = Literal["live", "lost", "drained"]


class ClusterObserver(Protocol):
    def claim_finished(self, seconds: float, outcome: ClaimOutcome) -> None:
        """One claim() call: its latency and how it ended (takeover = we overwrote another owner)."""

    def claim_lost(self, station_id: str) -> None:
        """Another node (or connection) took a station from us."""

    def lease_state(self, state: LeaseState) -> None: ...

    def leader(self, is_leader: bool) -> None: ...

    def etcd_request(self, path: str, seconds: float, ok: bool) -> None:
        """Latency of one gateway call; pass ``observer.etcd_request`` as ``EtcdClient(on_request=...)``."""


class NullObserver:
    """Default observer: records nothing."""

    def claim_finished(self, seconds: float, outcome: ClaimOutcome) -> None:
        pass

    def claim_lost(self, station_id: str) -> None:
        pass

    def lease_state(self, state: LeaseState) -> None:
        pass

    def leader(self, is_leader: bool) -> None:
        pass

    def etcd_request(self, path: str, seconds: float, ok: bool) -> None:
        pass
