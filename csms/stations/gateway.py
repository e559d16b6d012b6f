"""The WebSocket gateway: handshake, ownership claim, one RPC session per connection, drain.

A connection's life: refuse bad handshakes with an HTTP status before the upgrade, claim the station (the
newest connection wins, here and across replicas), record the claim in Postgres (which hands out the fence
token its writes carry), then serve the RPC session until the station leaves, the claim is lost (etcd says so,
or a write is refused under a newer fence), or the replica drains. Losing the cluster lease alone closes
nothing: the writes stay fenced in Postgres. Every connection runs in the server's handler nursery inside its
own cancel scope, so a failure closes exactly that connection at once.

Closes this replica starts for a drain, rebalancing or a lost claim are gentle: stop reading, commit and answer
every call already read, then send the close frame (bounded by the call timeout). What the station sent after
that is unanswered, so it resends it on its next connection; nothing it was told is stored is lost.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, WebSocketServer

from cluster import Claim, Coordinator
from csms.events import EventBus, StationConnected, StationDisconnected
from csms.ocpp import CallHandler, RpcObserver, RpcSession, Validator
from csms.stations.admission import AdmissionHold
from csms.stations.authentication import AuthLimits, AuthObserver, StationAuthenticator, source_key
from csms.stations.handshake import (
    UNAUTHORIZED_HEADERS,
    Refusal,
    basic_credentials,
    choose_subprotocol,
    station_id_from_path,
)
from csms.stations.handshake_slots import HandshakeSlots
from csms.stations.keepalive import KeepAlive
from csms.stations.registry import StationRegistry
from csms.stations.security_events import AUTH_THROTTLED, TLS_HANDSHAKE_FAILED, SecurityEventRecorder
from csms.stations.security_store import StationCredentials
from csms.stations.station_security import HandshakeSecurity, SecuritySettings
from csms.stations.tls import ReloadingTls, TlsWebSocketServer
from csms.storage import Coalescer, Fence

log = logging.getLogger(__name__)

# Records a claim in Postgres: the station's fence token for this connection's writes, None if a newer claim is.
FenceRecorder = Callable[[Claim], Awaitable[int | None]]


class ProtocolAdapter(Protocol):
    """One OCPP version as the gateway sees it, chosen per connection by the negotiated subprotocol: its
    validator (schemas, framing codes), its call handlers and its reclaim step. Built by the composition root;
    a new version (2.1) is one more adapter, nothing here changes."""

    subprotocol: str  # "ocpp1.6", "ocpp2.0.1"
    validator: Validator

    def handler_for(self, conn: StationConnection) -> CallHandler: ...

    async def after_connect(self, conn: StationConnection) -> None: ...


GOING_AWAY = 1001
POLICY_VIOLATION = 1008


class StationNotConnected(Exception):
    """The station has no connection on this replica."""


class GatewayObserver(AuthObserver, Protocol):
    def connection_opened(self) -> None: ...
    def connection_closed(self) -> None: ...
    def handshake_refused(self, status: int) -> None: ...


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
    closing: bool = False  # draining, shedding or moved: no new commands; ends once what was read is answered
    in_flight: InFlight = field(default_factory=InFlight)
    opened_at: float = field(default_factory=trio.current_time)

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


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        registry: StationRegistry,
        coordinator: Coordinator,
        record_fence: FenceRecorder,
        adapters: Sequence[ProtocolAdapter],
        events: EventBus,
        observer: GatewayObserver | None = None,
        rpc_observer: RpcObserver | None = None,
        security_events: SecurityEventRecorder | None = None,
    ) -> None:
        """``adapters`` in server preference order (CSMS_OCPP_VERSIONS): the first one the station offers wins."""
        self._settings = settings
        self._registry = registry
        self._coordinator = coordinator
        self._record_fence = record_fence
        self._adapters = {adapter.subprotocol: adapter for adapter in adapters}
        self._events = events
        self._observer = observer
        self._rpc_observer = rpc_observer
        self._auth = StationAuthenticator(settings.auth, observer)
        self._handshakes = HandshakeSlots(settings.max_concurrent_handshakes)
        self._security = HandshakeSecurity(settings.security, security_events)
        # A reconnect storm's credential reads go to Postgres as one query per batch, not one per handshake.
        self._credentials: Coalescer[str, StationCredentials] = Coalescer(
            registry.security.credentials_many, key=lambda station_id: station_id, max_batch=200, parallel=2
        )
        self._connections: dict[str, StationConnection] = {}
        self.connections_closed = 0  # ever, for the garbage collector's freezer
        self._keepalive = (
            KeepAlive(settings.ping_interval, settings.ping_timeout) if settings.ping_interval > 0 else None
        )
        self._accepting = True
        self.admission = AdmissionHold()  # rebalancing turns newcomers away while this replica is full
        self._all_closed: trio.Event | None = None
        self.port: int = settings.port
        coordinator.on_claim_lost(self._claim_lost)

    # -- public face ---------------------------------------------------------------------------------------

    def connected(self, station_id: str) -> bool:
        return station_id in self._connections

    def connection(self, station_id: str) -> StationConnection:
        try:
            return self._connections[station_id]
        except KeyError:
            raise StationNotConnected(station_id) from None

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def station_ids(self) -> list[str]:
        return list(self._connections)

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

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        s = self._settings
        async with trio.open_nursery() as handlers:
            await handlers.start(self._credentials.run)
            if self._keepalive is not None:
                await handlers.start(self._keepalive.run)
            listeners = await trio.open_tcp_listeners(s.port, host=s.bind)
            options: dict[str, Any] = {
                "handler_nursery": cast(trio.Nursery, _Contained(handlers)),
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
            self._security.reload_client_ca()

    def _tls_failed(self, address: str, reason: str) -> None:
        if self._observer:
            self._observer.handshake_refused(495)  # nginx's "SSL certificate error": no HTTP status was possible
        self._security.record(None, TLS_HANDSHAKE_FAILED, f"{address}: {reason}")

    def stop_accepting(self) -> None:
        self._accepting = False

    async def drain(self, rate: float) -> None:
        """Close every station with 1001 at `rate` per second so they reconnect elsewhere, each between calls."""
        self._accepting = False
        await self._close_gradually(list(self._connections.values()), rate, "replica draining")
        if self._connections:
            self._all_closed = trio.Event()
            await self._all_closed.wait()

    def settled_stations(self, min_age: float) -> list[str]:
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
        with trio.move_on_after(self._settings.call_timeout):
            await conn.in_flight.wait_idle()
        conn.close_gently(GOING_AWAY, reason, self._settings.call_timeout)

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
            async with self._handshakes.slot():
                conn = await self._admit(request)
        except Refusal as refusal:
            if self._observer:
                self._observer.handshake_refused(refusal.status)
            if refusal.status == 429:  # a guesser's throttled attempts: counted, one security event per id a second
                self._security.record(_path_id(request.path), AUTH_THROTTLED, refusal.reason)
            else:
                log.info(
                    "handshake refused",
                    extra={"path": request.path, "status": refusal.status, "reason": refusal.reason},
                )
            await self._auth.linger(refusal)
            headers = [(k.encode(), v.encode()) for k, v in refusal.headers]
            headers.append((b"Content-Type", b"text/plain; charset=utf-8"))
            await request.reject(refusal.status, extra_headers=headers, body=refusal.reason.encode() + b"\n")
            return
        if conn is None:
            return
        station_id, connection_id = conn.station_id, conn.connection_id
        previous = self._connections.get(station_id)
        if previous is not None:
            previous.close_gently(GOING_AWAY, "replaced by a newer connection", self._settings.call_timeout)
        self._connections[station_id] = conn
        if not self._accepting:  # a drain began during the upgrade, after its snapshot: close this one too
            conn.close_gently(GOING_AWAY, "replica draining", self._settings.call_timeout)
        if self._observer:
            self._observer.connection_opened()
        self._events.publish(StationConnected(station_id, connection_id, conn.protocol))
        log.info("station connected", extra={"station_id": station_id, "connection_id": connection_id})
        try:
            with conn.cancel_scope:
                await self._run_session(conn)
        finally:
            self.connections_closed += 1
            if self._keepalive is not None:
                self._keepalive.forget(conn)
            if self._connections.get(station_id) is conn:
                del self._connections[station_id]
                if not self._connections and self._all_closed is not None:
                    self._all_closed.set()
            if self._observer:
                self._observer.connection_closed()
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await conn.ws.aclose(conn.close_code, conn.close_reason)
            await self._release_quietly(conn.claim)
            self._events.publish(StationDisconnected(station_id, connection_id, conn.close_reason))
            log.info("station disconnected", extra={"station_id": station_id, "reason": conn.close_reason})

    async def _admit(self, request: WebSocketRequest) -> StationConnection | None:
        """Check, claim and upgrade (holding a handshake slot); None when refused here already."""
        try:
            with trio.fail_after(self._settings.handshake_timeout):
                station_id, protocol = await self._check_handshake(request)
        except Refusal:
            raise
        except Exception as exc:  # the registry is unreachable: tell the station to come back later
            log.warning("handshake check failed", extra={"path": request.path, "error": repr(exc)})
            await request.reject(503, body=b"temporarily unavailable, retry later\n")
            return None

        connection_id = secrets.token_hex(6)
        claim: Claim | None = None
        try:
            with trio.fail_after(self._settings.handshake_timeout):
                claim = await self._coordinator.claim(station_id, connection_id)
                fence = await self._record_fence(claim)
                if fence is None:
                    raise RuntimeError("a newer claim is already recorded")
                await self._registry.record_protocol(Fence(station_id, fence), protocol)
        except Exception as exc:
            log.warning("claim failed", extra={"station_id": station_id, "error": repr(exc)})
            await self._release_quietly(claim)
            await request.reject(503, body=b"station ownership unavailable, retry later\n")
            return None
        if not self._accepting:  # a drain began while we claimed: send the station elsewhere now
            await self._release_quietly(claim)
            raise Refusal(503, "replica is draining; reconnect")

        try:
            ws = await request.accept(subprotocol=protocol)
        except BaseException:
            await self._release_quietly(claim)  # the station left mid-handshake: don't leave it owned by us
            raise
        return StationConnection(station_id, connection_id, protocol, claim, fence, ws)

    async def _release_quietly(self, claim: Claim | None) -> None:
        """Compare-and-delete our owner key, bounded and shielded: it runs while a connection unwinds."""
        if claim is None:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            try:
                await self._coordinator.release(claim)
            except Exception as exc:
                log.warning("release failed", extra={"station_id": claim.station_id, "error": repr(exc)})

    async def _check_handshake(self, request: WebSocketRequest) -> tuple[str, str]:
        if not self._accepting:
            raise Refusal(503, "replica is draining; reconnect")
        station_id = station_id_from_path(request.path, self._settings.path_prefix)
        if self.admission.refuses(station_id, len(self._connections)):
            raise Refusal(503, "replica above its fair share while rebalancing; retry", (("Retry-After", "1"),))
        protocol = choose_subprotocol(list(request.proposed_subprotocols), list(self._adapters))
        peer = self._security.peer(request, station_id)
        credentials = basic_credentials(request.headers)
        self._security.check_username(station_id, credentials)
        self._auth.screen(station_id, credentials[1] if credentials else None)  # a guesser costs no query
        station = await self._credentials.submit(station_id)
        if not station.known:
            if self._settings.registration != "auto":
                raise Refusal(404, f"unknown station {station_id}")
            await self._registry.auto_register(station_id)
        if self._security.check(station_id, station, peer) or station.password_hash is None:
            return station_id, protocol  # a certificate naming the station, or no password to check
        if credentials is None:
            raise Refusal(401, "HTTP Basic credentials required", UNAUTHORIZED_HEADERS)
        await self._check_password(station_id, source_key(request.remote), credentials[1], station)
        return station_id, protocol

    async def _check_password(self, station_id: str, source: str, password: str, station: StationCredentials) -> None:
        """The current password, or the one a rotation sent (which then becomes the only one), each through the
        throttled, bounded authenticator."""
        assert station.password_hash is not None
        pending = station.pending_password_hash
        try:
            await self._auth.check(station_id, source, password, station.password_hash)
            return
        except Refusal as refusal:
            if refusal.status != 401 or pending is None:
                self._failed(station_id, refusal)
                raise
        try:
            await self._auth.check(station_id, source, password, pending)
        except Refusal as refusal:
            self._failed(station_id, refusal)
            raise
        await self._registry.security.promote_pending_password(station_id, pending)

    def _failed(self, station_id: str, refusal: Refusal) -> None:
        if refusal.status == 401:
            self._security.failed_password(station_id)

    async def _run_session(self, conn: StationConnection) -> None:
        s = self._settings
        adapter = self._adapters[conn.protocol]
        rpc = RpcSession(
            _WebSocketTransport(conn.ws),
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

    # -- cluster callbacks (synchronous, from the coordinator) ---------------------------------------------

    def _claim_lost(self, claim: Claim) -> None:
        conn = self._connections.get(claim.station_id)
        if conn is not None and conn.connection_id == claim.connection_id:
            # Gently: writes the new owner's fence rejects stay unanswered (AnswerWithheld), the rest are answered.
            conn.close_gently(
                GOING_AWAY, "ownership moved: a newer connection claimed the station", self._settings.call_timeout
            )


def _path_id(path: str) -> str | None:
    """The station id a refused request named, if its path was well formed (for the security event log)."""
    segment = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return segment if 0 < len(segment) <= 48 else None


class _Contained:
    """The server's handler nursery, seen through a wrapper that keeps one connection's failure to itself.

    Our handler catches what it raises, but trio-websocket's own tasks for a connection can fail too: a Ping
    the station sends while we are closing makes its reader task answer with a Pong that wsproto refuses in
    LOCAL_CLOSING (trio-websocket issue #184, open), and that LocalProtocolError used to escape into the
    nursery every station shares and stop the replica. trio.serve_listeners accepts any object with
    start_soon for this purpose.
    """

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def start_soon(self, async_fn: Callable[..., Awaitable[object]], *args: object, name: object = None) -> None:
        self._nursery.start_soon(_contained, async_fn, *args, name=name or async_fn)


async def _contained(async_fn: Callable[..., Awaitable[object]], *args: object) -> None:
    try:
        await async_fn(*args)
    except Exception as exc:  # one connection's library failure: that connection is gone, the rest serve on
        log.warning("connection ended by a WebSocket library error", extra={"error": repr(exc)})


class _WebSocketTransport:
    """Adapts a trio-websocket connection to the RPC layer's transport protocol."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws

    async def send(self, text: str) -> None:
        await self._ws.send_message(text)

    async def receive(self) -> str | bytes:
        return await self._ws.get_message()

    def buffered(self) -> list[str | bytes]:
        # trio-websocket has no public "take without waiting"; its receive channel holds the messages it has
        # already read off the socket (at most message_queue_size), and receive_nowait never blocks.
        channel = self._ws._recv_channel
        messages: list[str | bytes] = []
        while True:
            try:
                messages.append(channel.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return messages


__all__ = ["Gateway", "GatewaySettings", "ProtocolAdapter", "StationConnection", "StationNotConnected"]
