"""The storage observer: group-commit batch sizes, commit latency, errors and fence rejections."""

from __future__ import annotations

from csms.observability.metrics import Metrics


class StorageMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def batch_committed(self, size: int, seconds: float) -> None:
        self._m.db_batch_size.observe(size)
        self._m.db_commit_seconds.observe(seconds)

    def batch_retried(self, size: int, reason: str) -> None:
        self._m.db_errors.labels("batch_retried").inc()

    def write_failed(self, error: BaseException) -> None:
        self._m.db_errors.labels(type(error).__name__).inc()

    def fence_rejected(self, station_id: str) -> None:
        self._m.fence_rejections.inc()

    def query_finished(self, seconds: float, ok: bool) -> None:
        self._m.db_query_seconds.observe(seconds)
        if not ok:
            self._m.db_errors.labels("query").inc()
