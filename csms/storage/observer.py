"""Hooks for metrics: storage reports what happened, observability decides how to count it."""

from __future__ import annotations

from typing import Protocol


class StorageObserver(Protocol):
    """Called synchronously on the event-loop thread: implementations must be cheap and never raise."""

    def batch_committed(self, size: int, seconds: float) -> None:
        """A write transaction of ``size`` ops committed; ``seconds`` from BEGIN to COMMIT done."""

    def batch_retried(self, size: int, reason: str) -> None:
        """A batch was rolled back and its ``size`` remaining ops will be run again."""

    def write_failed(self, error: BaseException) -> None:
        """One write op failed; its caller gets ``error``."""

    def fence_rejected(self, station_id: str) -> None:
        """A write carried a stale fence token and was rejected."""

    def query_finished(self, seconds: float, ok: bool) -> None:
        """One read, ad-hoc statement or transaction outside the group-commit writer."""


class NullObserver:
    """Default observer: ignores everything. Subclass it to override only what you count."""

    def batch_committed(self, size: int, seconds: float) -> None:
        pass

    def batch_retried(self, size: int, reason: str) -> None:
        pass

    def write_failed(self, error: BaseException) -> None:
        pass

    def fence_rejected(self, station_id: str) -> None:
        pass

    def query_finished(self, seconds: float, ok: bool) -> None:
        pass
