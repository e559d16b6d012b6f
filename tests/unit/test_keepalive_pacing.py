"""The keep-alive starts a second's pings spread over that second, not in one burst per tick."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from csms.stations import keepalive
from csms.stations.keepalive import KeepAlive

pytestmark = pytest.mark.fast

INTERVAL, STATIONS = 30.0, 3000


class _FakeWs:
    def __init__(self, started: list[float]) -> None:
        self._started = started

    async def ping(self) -> None:
        self._started.append(trio.current_time())


@dataclass(eq=False)
class _Conn:
    ws: _FakeWs
    heard_at: float = -1e9  # long silent: pinged when due
    closed: list[str] = field(default_factory=list)

    def heard(self) -> None:
        self.heard_at = trio.current_time()

    def close(self, code: int, reason: str) -> None:
        self.closed.append(reason)


async def test_pings_due_over_a_second_start_in_small_groups(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keepalive, "hear_pings", lambda ws, heard: None)
    started: list[float] = []
    alive = KeepAlive(INTERVAL, timeout=5.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(alive.run)
        for _ in range(STATIONS):
            alive.watch(_Conn(_FakeWs(started)))  # type: ignore[arg-type]
        await trio.sleep(3 * INTERVAL)
        nursery.cancel_scope.cancel()
    per_instant = collections.Counter(started)
    per_second = STATIONS / (INTERVAL / 2)  # first pings fall in the interval's second half
    assert len(started) >= 2 * STATIONS  # every station pinged every interval
    # ~200 pings a second fall due; a tick of one second started each second's together (225 here).
    assert max(per_instant.values()) <= per_second * keepalive.TICK * 3, max(per_instant.values())
