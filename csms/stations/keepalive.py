"""WebSocket liveness for every connection of a replica from one scheduler task.

A task per connection sleeping between pings kept a resident task, a timer and its cancel scopes for every
station, and the pings of a connect burst fell due in the same instant thirty seconds later. Here one task
keeps a heap of due times (the first ping of each connection spread over the interval) and starts a short
ping task only when a ping is due; a pong later than `timeout` closes the connection.

The scheduler wakes often (`TICK`, 50 ms): pings fall due evenly, ~N/interval a second (~630/s at 19,000
stations and 30 s), and a tick of one second started a second's worth at once. That burst, a ping task each
plus their pongs a moment later, held the loop for tens of milliseconds every second, and every station
message whose path crossed it waited that long at each of its trips through the scheduler: the latency tail.

A connection we heard from within the interval (an OCPP message, or the station's own WebSocket ping) is not
pinged: that frame proved the host alive as well as a pong would, and its check moves to one interval after
it. A ping was the largest part of an idle fleet's CPU (~85 us each). Detection is as before: a host that
vanished without a FIN sent its last frame at some T, is pinged at the latest at T + interval and closed
within T + interval + timeout + a tick.
"""

from __future__ import annotations

import heapq
import itertools
import random
from typing import Protocol

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from csms.stations.ws_adapters import hear_pings, note_station_pings

GOING_AWAY = 1001
TICK = 0.05  # seconds between looks at the due heap: ~1/20 of a second's pings start together


class Pingable(Protocol):
    ws: WebSocketConnection
    heard_at: float  # trio clock: the last frame received from the station

    def heard(self) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


class KeepAlive:
    def __init__(self, interval: float, timeout: float) -> None:
        self._interval = interval
        self._timeout = timeout
        self._tick = min(TICK, interval / 4)
        self._due: list[tuple[float, int, Pingable]] = []  # (when, tie-breaker, connection)
        self._watched: set[Pingable] = set()
        self._seq = itertools.count()
        note_station_pings()

    def watch(self, conn: Pingable) -> None:
        """Ping `conn` from now on; its first ping is spread over the interval (a burst's pings not in step)."""
        self._watched.add(conn)
        hear_pings(conn.ws, conn.heard)
        self._schedule(conn, self._interval * random.uniform(0.5, 1.0))

    def forget(self, conn: Pingable) -> None:
        self._watched.discard(conn)  # its heap entry is skipped when it falls due

    def _schedule(self, conn: Pingable, delay: float) -> None:
        heapq.heappush(self._due, (trio.current_time() + delay, next(self._seq), conn))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as pings:
            task_status.started()
            while True:
                await trio.sleep(self._tick)
                now = trio.current_time()
                while self._due and self._due[0][0] <= now:
                    conn = heapq.heappop(self._due)[2]
                    if conn not in self._watched:
                        continue
                    if now - conn.heard_at < self._interval:  # it talked to us: alive, check again later
                        self._schedule(conn, conn.heard_at + self._interval - now)
                    else:
                        pings.start_soon(self._ping, conn)

    async def _ping(self, conn: Pingable) -> None:
        with trio.move_on_after(self._timeout) as scope:
            try:
                await conn.ws.ping()
            except ConnectionClosed:  # the station closed it; our reader may be waiting on a full inbox
                if conn in self._watched:
                    conn.close(GOING_AWAY, "station closed the connection")
                return
        if conn not in self._watched:
            return  # closed meanwhile
        if scope.cancelled_caught:
            conn.close(GOING_AWAY, "pong timeout")
        else:
            self._schedule(conn, self._interval)
