"""This replica's live connections, one per station: newest wins, and gentle closes for drain and shedding."""

from __future__ import annotations

from collections.abc import Iterable

import trio

from cluster import Claim
from csms.stations.connection import GOING_AWAY, StationConnection, StationNotConnected


class ConnectionTable:
    def __init__(self, call_timeout: float) -> None:
        self._call_timeout = call_timeout  # the grace a gentle close gives the calls already read
        self._connections: dict[str, StationConnection] = {}
        self.accepting = True
        self.closed_count = 0  # ever, for the garbage collector's freezer
        self._all_closed: trio.Event | None = None

    def __contains__(self, station_id: str) -> bool:
        return station_id in self._connections

    def __len__(self) -> int:
        return len(self._connections)

    def get(self, station_id: str) -> StationConnection:
        try:
            return self._connections[station_id]
        except KeyError:
            raise StationNotConnected(station_id) from None

    def station_ids(self) -> list[str]:
        return list(self._connections)

    def add(self, conn: StationConnection) -> None:
        """``conn`` is the station's connection now; a previous one closes gently (as does ``conn`` when a
        drain began during its upgrade, after the drain's snapshot)."""
        previous = self._connections.get(conn.station_id)
        if previous is not None:
            previous.close_gently(GOING_AWAY, "replaced by a newer connection", self._call_timeout)
        self._connections[conn.station_id] = conn
        if not self.accepting:
            conn.close_gently(GOING_AWAY, "replica draining", self._call_timeout)

    def remove(self, conn: StationConnection) -> None:
        self.closed_count += 1
        if self._connections.get(conn.station_id) is conn:
            del self._connections[conn.station_id]
            if not self._connections and self._all_closed is not None:
                self._all_closed.set()

    def claim_lost(self, claim: Claim) -> None:
        """The coordinator says a newer connection claimed the station: close ours (if it is that claim's)."""
        conn = self._connections.get(claim.station_id)
        if conn is not None and conn.connection_id == claim.connection_id:
            # Gently: writes the new owner's fence rejects stay unanswered (AnswerWithheld), the rest are answered.
            conn.close_gently(GOING_AWAY, "ownership moved: a newer connection claimed the station", self._call_timeout)

    async def drain(self, rate: float) -> None:
        """Close every station with 1001 at `rate` per second so they reconnect elsewhere, each between calls."""
        self.accepting = False
        await self._close_gradually(list(self._connections.values()), rate, "replica draining")
        if self._connections:
            self._all_closed = trio.Event()
            await self._all_closed.wait()

    def settled(self, min_age: float) -> list[str]:
        """Stations connected here for at least `min_age` seconds, longest first: the ones rebalancing may move
        (a younger connection was made recently, so closing it would disconnect that station twice too soon)."""
        oldest = trio.current_time() - min_age
        settled = [c for c in self._connections.values() if not c.closing and c.opened_at <= oldest]
        return [c.station_id for c in sorted(settled, key=lambda c: c.opened_at)]

    async def shed(self, station_ids: Iterable[str], rate: float) -> int:
        """Rebalancing: close these stations gently; they reconnect through the balancer elsewhere."""
        victims = [c for s in station_ids if (c := self._connections.get(s)) is not None and not c.closing]
        await self._close_gradually(victims, rate, "rebalancing")
        return len(victims)

    async def _close_gradually(self, conns: list[StationConnection], rate: float, reason: str) -> None:
        interval = 1.0 / rate if rate > 0 else 0.0
        async with trio.open_nursery() as nursery:
            for conn in conns:
                conn.closing = True
                nursery.start_soon(self._close_when_idle, conn, reason)
                if interval:
                    await trio.sleep(interval)

    async def _close_when_idle(self, conn: StationConnection, reason: str) -> None:
        with trio.move_on_after(self._call_timeout):
            await conn.in_flight.wait_idle()
        conn.close_gently(GOING_AWAY, reason, self._call_timeout)
