"""Admission hold: while the cluster rebalances, a replica at or above its fair share turns newcomers away.

A refused handshake (HTTP 503, Retry-After 1, before the upgrade) costs a station one retry, not a session;
its next attempt through the balancer lands on another replica, ideally an under-loaded one. It must never
lock a station out, so a hold is short (it ends when the round's shed stations should have landed) and a
replica refuses one station at most `MAX_REFUSALS` times per hold, then accepts it whatever its load.
"""

from __future__ import annotations

import trio

MAX_REFUSALS = 3
_MAX_TRACKED = 100_000  # refusal counts kept per hold; beyond this the hold simply ends early


class AdmissionHold:
    def __init__(self) -> None:
        self._target = 0
        self._until = 0.0
        self._refused: dict[str, int] = {}

    def hold(self, target: int, seconds: float) -> None:
        """Refuse new stations while holding `target` or more, for `seconds` from now."""
        self._target = target
        self._until = trio.current_time() + seconds
        self._refused.clear()

    def refuses(self, station_id: str, connected: int) -> bool:
        """Whether to turn this handshake away now (and count it against the station's allowance)."""
        if trio.current_time() >= self._until or connected < self._target:
            return False
        refused = self._refused.get(station_id, 0)
        if refused >= MAX_REFUSALS or len(self._refused) >= _MAX_TRACKED:
            return False
        self._refused[station_id] = refused + 1
        return True
