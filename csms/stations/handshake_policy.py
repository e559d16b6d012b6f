"""Who may connect, decided before the WebSocket upgrade: draining and rebalancing caps, the subprotocol, the
TLS peer, and the station's credentials (read coalesced: a reconnect storm is one query per batch)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio
from trio_websocket import WebSocketRequest

from csms.stations.admission import AdmissionHold
from csms.stations.authentication import AuthLimits, AuthObserver, StationAuthenticator, source_key
from csms.stations.handshake import (
    UNAUTHORIZED_HEADERS,
    Refusal,
    basic_credentials,
    choose_subprotocol,
    station_id_from_path,
)
from csms.stations.registry import StationRegistry
from csms.stations.security_events import AUTH_THROTTLED, TLS_HANDSHAKE_FAILED, SecurityEventRecorder
from csms.stations.security_store import StationCredentials
from csms.stations.station_security import HandshakeSecurity, SecuritySettings
from csms.storage import Coalescer

log = logging.getLogger(__name__)


class HandshakePolicy:
    def __init__(
        self,
        registry: StationRegistry,
        *,
        path_prefix: str,
        registration: str,
        subprotocols: list[str],
        auth: AuthLimits,
        security: SecuritySettings,
        observer: AuthObserver | None,
        security_events: SecurityEventRecorder | None,
        accepting: Callable[[], bool],
        connection_count: Callable[[], int],
    ) -> None:
        """``subprotocols`` in server preference order: the first one the station offers wins."""
        self._registry = registry
        self._path_prefix = path_prefix
        self._registration = registration
        self._subprotocols = subprotocols
        self._auth = StationAuthenticator(auth, observer)
        self._security = HandshakeSecurity(security, security_events)
        self._accepting = accepting
        self._connection_count = connection_count
        self.admission = AdmissionHold()  # rebalancing turns newcomers away while this replica is full
        # A reconnect storm's credential reads go to Postgres as one query per batch, not one per handshake.
        self._credentials: Coalescer[str, StationCredentials] = Coalescer(
            registry.security.credentials_many, key=lambda station_id: station_id, max_batch=200, parallel=2
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self._credentials.run(task_status=task_status)

    async def check(self, request: WebSocketRequest) -> tuple[str, str, str | None]:
        """The station id and subprotocol of an acceptable request, and the subprotocol recorded at the station's
        last connect (None: never connected); else raises Refusal (an HTTP status)."""
        if not self._accepting():
            raise Refusal(503, "replica is draining; reconnect")
        station_id = station_id_from_path(request.path, self._path_prefix)
        if self.admission.refuses(station_id, self._connection_count()):
            raise Refusal(503, "replica above its fair share while rebalancing; retry", (("Retry-After", "1"),))
        protocol = choose_subprotocol(list(request.proposed_subprotocols), self._subprotocols)
        peer = self._security.peer(request, station_id)
        credentials = basic_credentials(request.headers)
        self._security.check_username(station_id, credentials)
        self._auth.screen(station_id, credentials[1] if credentials else None)  # a guesser costs no query
        station = await self._credentials.submit(station_id)
        if not station.known:
            if self._registration != "auto":
                raise Refusal(404, f"unknown station {station_id}")
            await self._registry.auto_register(station_id)
        if self._security.check(station_id, station, peer) or station.password_hash is None:
            return station_id, protocol, station.protocol  # a certificate naming the station, or no password
        if credentials is None:
            raise Refusal(401, "HTTP Basic credentials required", UNAUTHORIZED_HEADERS)
        await self._check_password(station_id, source_key(request.remote), credentials[1], station)
        return station_id, protocol, station.protocol

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

    async def refuse(self, request: WebSocketRequest, refusal: Refusal) -> None:
        """Log or record the refusal, linger (a guesser's pace), and answer it with its HTTP status."""
        if refusal.status == 429:  # a guesser's throttled attempts: counted, one security event per id a second
            self._security.record(_path_id(request.path), AUTH_THROTTLED, refusal.reason)
        else:
            log.info(
                "handshake refused", extra={"path": request.path, "status": refusal.status, "reason": refusal.reason}
            )
        await self._auth.linger(refusal)
        headers = [(k.encode(), v.encode()) for k, v in refusal.headers]
        headers.append((b"Content-Type", b"text/plain; charset=utf-8"))
        await request.reject(refusal.status, extra_headers=headers, body=refusal.reason.encode() + b"\n")

    def tls_failed(self, address: str, reason: str) -> None:
        self._security.record(None, TLS_HANDSHAKE_FAILED, f"{address}: {reason}")

    def reload_client_ca(self) -> None:
        self._security.reload_client_ca()


def _path_id(path: str) -> str | None:
    """The station id a refused request named, if its path was well formed (for the security event log)."""
    segment = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return segment if 0 < len(segment) <= 48 else None
