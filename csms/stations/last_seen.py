"""`last_seen_at` for every station message without a write per message.

Handlers note each message here (a dict assignment); a flusher writes what was noted once per interval, one
statement per chunk of stations. A replica that dies loses at most one interval of "seen" times, which the
station's next message restores. A Heartbeat writes nothing else: it is answered at once, and this is its
only effect (docs/design/durability.md, "Liveness is exempt").
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import trio

from csms.stations.registry import StationRegistry
from csms.storage import StorageError

log = logging.getLogger(__name__)

_FLUSH_TIMEOUT = 10.0


class LastSeen:
    """Bounded by the number of stations that sent something since the last successful flush."""

    def __init__(self, registry: StationRegistry, interval: float) -> None:
        self._registry = registry
        self._interval = interval
        self._seen: dict[str, float] = {}  # epoch seconds: ~10x cheaper per message than a datetime

    def saw(self, station_id: str) -> None:
        self._seen[station_id] = time.time()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                await trio.sleep(self._interval)
                await self.flush()
        finally:
            with trio.CancelScope(shield=True):
                await self.flush()  # shutdown: what was noted since the last flush

    async def flush(self) -> None:
        seen, self._seen = self._seen, {}
        if not seen:
            return
        with trio.move_on_after(_FLUSH_TIMEOUT) as scope:
            try:
                await self._registry.touch_many({k: datetime.fromtimestamp(v, UTC) for k, v in seen.items()})
                return
            except StorageError as exc:
                log.warning("last_seen flush failed; retrying next interval", extra={"error": repr(exc)})
        if scope.cancelled_caught:
            log.warning("last_seen flush timed out; retrying next interval", extra={"stations": len(seen)})
        for station_id, at in seen.items():  # keep the newer of what failed and what came since
            self._seen[station_id] = max(at, self._seen.get(station_id, at))
