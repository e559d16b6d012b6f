"""Security events the CSMS itself notices (refused downgrades, certificate failures, throttling), stored in bulk.

A handshake refusal must cost the refusing replica nothing an attacker can multiply: recording is a dict update
(no await), repeats of the same (station, type) within a flush interval become one row with a count, the table
of pending events is capped (beyond it events are only counted and logged once per interval), and one task
writes what accumulated in one statement per interval.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import trio

from csms.stations.security_store import SecurityStore

log = logging.getLogger(__name__)

# Event types the CSMS records (stations send their own through SecurityEventNotification).
PROFILE_TOO_LOW = "SecurityProfileTooLow"
INVALID_CERTIFICATE = "InvalidChargingStationCertificate"
IDENTITY_MISMATCH = "StationIdentityMismatch"
INVALID_CREDENTIALS = "InvalidCredentials"
AUTH_THROTTLED = "AuthenticationThrottled"
TLS_HANDSHAKE_FAILED = "TlsHandshakeFailed"
PASSWORD_ROTATION = "PasswordRotation"
PROFILE_CHANGE = "SecurityProfileChange"

_MAX_PENDING = 1_000  # distinct events per interval; an attacker rotating ids cannot flood the table
_MAX_TECH_INFO = 255  # the OCPP field's length; enough to say why


class SecurityEventRecorder:
    def __init__(self, store: SecurityStore, interval: float = 1.0) -> None:
        self._store = store
        self._interval = interval
        self._pending: dict[tuple[str | None, str], tuple[str | None, int, datetime]] = {}
        self._dropped = 0

    def record(self, station_id: str | None, event_type: str, tech_info: str | None = None) -> None:
        """Note an event now; written within one interval. Never blocks, never raises."""
        key = (station_id, event_type)
        entry = self._pending.get(key)
        if entry is not None:
            self._pending[key] = (entry[0], entry[1] + 1, entry[2])
        elif len(self._pending) < _MAX_PENDING:
            info = tech_info[:_MAX_TECH_INFO] if tech_info else None
            self._pending[key] = (info, 1, datetime.now(UTC))
        else:
            self._dropped += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                await trio.sleep(self._interval)
                await self.flush()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        if self._dropped:
            log.warning("security events dropped (too many distinct at once)", extra={"count": self._dropped})
            self._dropped = 0
        if not pending:
            return
        rows = [(station, kind, info, count, at) for (station, kind), (info, count, at) in pending.items()]
        try:
            await self._store.record_csms_events(rows)
        except Exception as exc:  # Postgres away: the events are lost, the replica keeps serving
            log.warning("security events not stored", extra={"count": len(rows), "error": repr(exc)})
