"""One live station connection on this replica, and what closing it gently needs (its calls in flight)."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio
from trio_websocket import WebSocketConnection

from cluster import Claim
from csms.ocpp import RpcSession

GOING_AWAY = 1001


class StationNotConnected(Exception):
    """The station has no connection on this replica."""


class InFlight:
    """Counts our calls to a station in progress, so a drain lets them finish first (answers need the reader)."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = trio.Event()
        self._idle.set()

    def enter(self) -> None:
        if self.count == 0:
            self._idle = trio.Event()
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()


@dataclass(eq=False)
class StationConnection:
    """One live station connection on this replica; `rpc` is how commands reach the station."""

    station_id: str
    connection_id: str
    protocol: str
    claim: Claim
    fence: int  # the fence token every write for this connection carries (recorded with the claim)
    ws: WebSocketConnection
    cancel_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    rpc: RpcSession | None = None
    close_code: int = 1000
    close_reason: str = "bye"
    booted: bool = False  # a BootNotification was answered on this connection
    boot_status: str | None = None  # what the station was last told at boot (this connection, else Postgres)
    triggered: set[str] = field(default_factory=set)  # messages asked for with TriggerMessage on this connection
    # Connectors (1.6: connector id; 2.0.1: (evse id, connector id)) whose StatusNotification arrived on this
    # connection: reclaim does not ask again for a state the station already reported after reconnecting.
    statuses_reported: set[int | tuple[int, int]] = field(default_factory=set)
    closing: bool = False  # draining, shedding or moved: no new commands; ends once what was read is answered
    in_flight: InFlight = field(default_factory=InFlight)
    opened_at: float = field(default_factory=trio.current_time)
    heard_at: float = field(default_factory=trio.current_time)  # last frame from the station (trio clock)

    def heard(self) -> None:
        """A frame arrived: proof enough that the host is alive, so the keep-alive skips a ping."""
        self.heard_at = trio.current_time()

    def close(self, code: int, reason: str) -> None:
        """End the connection now; the handler closes the socket with this code as it unwinds."""
        self.close_code, self.close_reason = code, reason
        self.cancel_scope.cancel()

    def close_gently(self, code: int, reason: str, grace: float) -> None:
        """Read no more, commit and answer every call already read, then close with this code; at once after
        ``grace`` seconds (a handler stuck on a dead Postgres must not hold the close forever)."""
        self.closing = True
        self.close_code, self.close_reason = code, reason
        if self.rpc is None:
            self.cancel_scope.cancel()
            return
        self.rpc.stop_reading()
        self.cancel_scope.deadline = min(self.cancel_scope.deadline, trio.current_time() + grace)
