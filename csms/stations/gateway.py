"""The WebSocket gateway: handshake, ownership claim, one RPC session per connection, drain.

A connection's life: refuse bad handshakes with an HTTP status before the upgrade (``handshake_policy``), claim
the station (``ownership``: the newest connection wins, here and across replicas) and record the claim in
Postgres (which hands out the fence token its writes carry), then serve the RPC session until the station
leaves, the claim is lost (etcd says so, or a write is refused under a newer fence), or the replica drains
(``connection_table``). Losing the cluster lease alone closes nothing: the writes stay fenced in Postgres. Every
connection runs in the server's handler nursery inside its own cancel scope, so a failure closes exactly that
connection at once.

Closes this replica starts for a drain, rebalancing or a lost claim are gentle: stop reading, commit and answer
every call already read, then send the close frame (bounded by the call timeout). What the station sent after
that is unanswered, so it resends it on its next connection; nothing it was told is stored is lost.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, WebSocketServer

from cluster import Coordinator
from csms.ocpp import CallHandler, RpcObserver, RpcSession, Validator
from csms.stations.admission import AdmissionHold
from csms.stations.authentication import AuthLimits, AuthObserver
from csms.stations.connection import StationConnection, StationNotConnected
from csms.stations.connection_table import ConnectionTable
from csms.stations.fleet import PresenceRecorder
from csms.stations.handshake import Refusal
from csms.stations.handshake_phases import HandshakePhases
from csms.stations.handshake_policy import HandshakePolicy
from csms.stations.handshake_slots import HandshakeSlots
from csms.stations.keepalive import KeepAlive
from csms.stations.ownership import FenceRecorder, Ownership
from csms.stations.registry import StationRegistry
from csms.stations.security_events import SecurityEventRecorder
from csms.stations.station_security import SecuritySettings
from csms.stations.tls import ReloadingTls, TlsWebSocketServer
from csms.stations.ws_adapters import Contained, WebSocketTransport

log = logging.getLogger(__name__)


class ProtocolAdapter(Protocol):
    """One OCPP version as the gateway sees it, chosen per connection by the negotiated subprotocol: its
    validator (schemas, framing codes), its call handlers and its reclaim step. Built by the composition root;
    a new version (2.1) is one more adapter, nothing here changes."""

    subprotocol: str  # "ocpp1.6", "ocpp2.0.1"
    validator: Validator

    def handler_for(self, conn: StationConnection) -> CallHandler: ...

    async def after_connect(self, conn: StationConnection) -> None: ...


class GatewayObserver(AuthObserver, Protocol):
    def connection_opened(self) -> None: ...
    def connection_closed(self) -> None: ...
    def handshake_refused(self, status: int) -> None: ...
    def handshake_phase(self, phase: str, seconds: float) -> None: ...


@dataclass
class GatewaySettings:
    bind: str = "127.0.0.1"
    port: int = 9000
    path_prefix: str = "/ocpp/"
    registration: str = "known"
    ping_interval: float = 30.0
    ping_timeout: float = 20.0
    call_timeout: float = 30.0
    max_frame_bytes: int = 65536
    tls: ReloadingTls | None = None  # wss:// terminated here (profiles 2 and 3); None: plain ws://
    tls_reload_interval: float = 10.0  # seconds between checks of the certificate files
    security: SecuritySettings = field(default_factory=SecuritySettings)
    handshake_timeout: float = 10.0
    auth: AuthLimits = field(default_factory=AuthLimits)
    max_concurrent_handshakes: int = 1000


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        registry: StationRegistry,
        coordinator: Coordinator,
        record_fence: FenceRecorder,
        adapters: Sequence[ProtocolAdapter],
        presence: PresenceRecorder,
        observer: GatewayObserver | None = None,
        rpc_observer: RpcObserver | None = None,
        security_events: SecurityEventRecorder | None = None,
    ) -> None:
        """``adapters`` in server preference order (CSMS_OCPP_VERSIONS): the first one the station offers wins."""
        self._settings = settings
        self._adapters = {adapter.subprotocol: adapter for adapter in adapters}
        self._presence = presence  # where this replica's connects and disconnects are recorded
        self._observer = observer
        self._rpc_observer = rpc_observer
        self._table = ConnectionTable(settings.call_timeout)
        self._handshakes = HandshakeSlots(settings.max_concurrent_handshakes)
        self._policy = HandshakePolicy(
            registry,
            path_prefix=settings.path_prefix,
            registration=settings.registration,
            subprotocols=list(self._adapters),
            auth=settings.auth,
            security=settings.security,
            observer=observer,
            security_events=security_events,
            accepting=lambda: self._table.accepting,
            connection_count=lambda: len(self._table),
        )
        self._phases = HandshakePhases(observer.handshake_phase if observer else None)
        self._ownership = Ownership(coordinator, record_fence, registry, settings.handshake_timeout, self._phases)
        self._keepalive = (
            KeepAlive(settings.ping_interval, settings.ping_timeout) if settings.ping_interval > 0 else None
        )
        self.port: int = settings.port
        coordinator.on_claim_lost(self._table.claim_lost)

    # -- public face ---------------------------------------------------------------------------------------

    @property
    def admission(self) -> AdmissionHold:
        """Rebalancing turns newcomers away while this replica is full."""
        return self._policy.admission

    @property
    def connections_closed(self) -> int:
        """Ever, for the garbage collector's freezer."""
        return self._table.closed_count

    def connected(self, station_id: str) -> bool:
        return station_id in self._table

    def connection(self, station_id: str) -> StationConnection:
        return self._table.get(station_id)

    @property
    def connection_count(self) -> int:
        return len(self._table)

    def station_ids(self) -> list[str]:
        return self._table.station_ids()

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """Send a CSMS-initiated call on this replica's connection to the station."""
        conn = self.connection(station_id)
        if conn.rpc is None or conn.closing:
            raise StationNotConnected(station_id)
        if action == "TriggerMessage":  # a station not yet accepted may send what we asked for (2.0.1 B02)
            conn.triggered.add(str(payload.get("requestedMessage")))
        conn.in_flight.enter()
        try:
            return await conn.rpc.call(action, payload, timeout=timeout)
        finally:
            conn.in_flight.leave()

    async def drain(self, rate: float) -> None:
        """Close every station with 1001 at `rate` per second so they reconnect elsewhere, each between calls."""
        await self._table.drain(rate)

    def settled_stations(self, min_age: float) -> list[str]:
        """Stations connected here for at least `min_age` seconds, longest first (see ConnectionTable.settled)."""
        return self._table.settled(min_age)

    async def shed(self, station_ids: Iterable[str], rate: float) -> int:
        """Rebalancing: close these stations gently; they reconnect through the balancer elsewhere."""
        return await self._table.shed(station_ids, rate)

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        s = self._settings
        async with trio.open_nursery() as handlers:
            await handlers.start(self._policy.run)
            if self._keepalive is not None:
                await handlers.start(self._keepalive.run)
            listeners = await trio.open_tcp_listeners(s.port, host=s.bind)
            options: dict[str, Any] = {
                "handler_nursery": cast(trio.Nursery, Contained(handlers)),
                # Frames a little over the OCPP limit get a CallError from the RPC layer; far over it the
                # socket closes with 1009 before we buffer them.
                "max_message_size": 4 * s.max_frame_bytes,
                "message_queue_size": 8,
                "connect_timeout": s.handshake_timeout,
                "disconnect_timeout": 5,
            }
            server: WebSocketServer
            if s.tls is not None:
                server = TlsWebSocketServer(
                    self._handle,
                    listeners,
                    tls=s.tls,
                    handshake_timeout=s.handshake_timeout,
                    on_failure=self._tls_failed,
                    **options,
                )
                handlers.start_soon(self._reload_certificates, s.tls)
            else:
                server = WebSocketServer(self._handle, listeners, **options)
            await handlers.start(server.run)
            self.port = server.port
            task_status.started(server.port)

    async def _reload_certificates(self, tls: ReloadingTls) -> None:
        while True:
            await trio.sleep(self._settings.tls_reload_interval)
            await trio.to_thread.run_sync(tls.reload_if_changed)
            self._policy.reload_client_ca()

    def _tls_failed(self, address: str, reason: str) -> None:
        if self._observer:
            self._observer.handshake_refused(495)  # nginx's "SSL certificate error": no HTTP status was possible
        self._policy.tls_failed(address, reason)

    # -- connection lifecycle ------------------------------------------------------------------------------

    async def _handle(self, request: WebSocketRequest) -> None:
        try:
            await self._serve_request(request)
        except ConnectionClosed:
            pass
        except Exception:
            # One station's failure must never reach the server's nursery and take the others down.
            log.exception("station connection failed", extra={"path": request.path})

    async def _serve_request(self, request: WebSocketRequest) -> None:
        try:
            slot_waited = self._phases.start("slot")
            async with self._handshakes.slot():
                slot_waited()
                conn = await self._admit(request)
        except Refusal as refusal:
            if self._observer:
                self._observer.handshake_refused(refusal.status)
            await self._policy.refuse(request, refusal)
            return
        if conn is None:
            return
        station_id, connection_id = conn.station_id, conn.connection_id
        self._table.add(conn)
        if self._observer:
            self._observer.connection_opened()
        self._presence.connected(station_id, connection_id, conn.protocol)
        log.info("station connected", extra={"station_id": station_id, "connection_id": connection_id})
        try:
            with conn.cancel_scope:
                await self._run_session(conn)
        finally:
            if self._keepalive is not None:
                self._keepalive.forget(conn)
            self._table.remove(conn)
            if self._observer:
                self._observer.connection_closed()
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await conn.ws.aclose(conn.close_code, conn.close_reason)
            await self._ownership.release_quietly(conn.claim)
            self._presence.disconnected(station_id, connection_id, conn.close_reason)
            log.info("station disconnected", extra={"station_id": station_id, "reason": conn.close_reason})

    async def _admit(self, request: WebSocketRequest) -> StationConnection | None:
        """Check, claim and upgrade (holding a handshake slot); None when refused here already."""
        try:
            with trio.fail_after(self._settings.handshake_timeout), self._phases.phase("check"):
                station_id, protocol, recorded = await self._policy.check(request)
        except Refusal:
            raise
        except Exception as exc:  # the registry is unreachable: tell the station to come back later
            log.warning("handshake check failed", extra={"path": request.path, "error": repr(exc)})
            await request.reject(503, body=b"temporarily unavailable, retry later\n")
            return None
        try:
            claim, fence = await self._ownership.take(station_id, protocol, recorded)
        except Exception as exc:
            log.warning("claim failed", extra={"station_id": station_id, "error": repr(exc)})
            await request.reject(503, body=b"station ownership unavailable, retry later\n")
            return None
        if not self._table.accepting:  # a drain began while we claimed: send the station elsewhere now
            await self._ownership.release_quietly(claim)
            raise Refusal(503, "replica is draining; reconnect")
        try:
            with self._phases.phase("accept"):
                ws = await request.accept(subprotocol=protocol)
        except BaseException:
            await self._ownership.release_quietly(claim)  # the station left mid-handshake: don't leave it ours
            raise
        return StationConnection(station_id, claim.connection_id, protocol, claim, fence, ws)

    async def _run_session(self, conn: StationConnection) -> None:
        s = self._settings
        adapter = self._adapters[conn.protocol]
        rpc = RpcSession(
            WebSocketTransport(conn.ws, conn.heard),
            adapter.handler_for(conn),
            adapter.validator,
            call_timeout=s.call_timeout,
            max_frame_bytes=s.max_frame_bytes,
            observer=self._rpc_observer,
            label=conn.station_id,
        )
        conn.rpc = rpc
        if self._keepalive is not None:
            self._keepalive.watch(conn)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(adapter.after_connect, conn)
            with contextlib.suppress(ConnectionClosed):
                await rpc.serve()
            if rpc.station_left:
                conn.close_reason = "station closed the connection"
            nursery.cancel_scope.cancel()


__all__ = ["Gateway", "GatewaySettings", "ProtocolAdapter", "StationConnection", "StationNotConnected"]
