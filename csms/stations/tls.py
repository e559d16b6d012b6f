"""TLS terminated by the replica (security profiles 2 and 3): context, hot reload, and the peer's certificate.

The context follows the OCPP security whitepaper / 2.0.1 part 2: TLS 1.2 or newer, and for TLS 1.2 only the
AES-GCM suites it lists (ECDHE with ECDSA or RSA keys, and the plain-RSA pair it keeps for older stations);
TLS 1.3 suites are all AEAD. With a client CA the server asks for a certificate but does not require one, so
profile 1 and 2 stations connect beside profile 3 ones; OpenSSL checks the chain and validity, and the
handshake policy checks identity, revocation and each station's profile.

Hot reload: cert-manager rewrites the mounted Secret every few weeks. A task polls the files (size, mtime and
content hash) and builds a fresh context when they change; each new TLS handshake takes the current context,
and connected stations keep the session they have. A half-written or mismatched pair keeps the old context.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio
from trio_websocket import WebSocketServer

log = logging.getLogger(__name__)

# OpenSSL names of the TLS 1.2 suites OCPP requires (TLS_ECDHE_ECDSA_WITH_AES_128/256_GCM_SHA256/384, their RSA
# counterparts, and TLS_RSA_WITH_AES_128/256_GCM_SHA256/384 for RSA-only stations).
OCPP_TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
    )
)


@dataclass(frozen=True)
class TlsFiles:
    cert_file: str
    key_file: str
    client_ca_file: str = ""

    def paths(self) -> list[str]:
        return [p for p in (self.cert_file, self.key_file, self.client_ca_file) if p]


@dataclass(frozen=True)
class PeerTransport:
    """How the station reached this process: over TLS here, and the certificate it presented (DER)."""

    tls: bool = False
    certificate: bytes | None = None


# Set by the TLS server for the task that handles the connection (the handler runs in that same task).
_PLAIN = PeerTransport()
current_peer: contextvars.ContextVar[PeerTransport] = contextvars.ContextVar("current_peer", default=_PLAIN)


def build_context(files: TlsFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(OCPP_TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(files.cert_file, files.key_file)
    if files.client_ca_file:
        context.load_verify_locations(cafile=files.client_ca_file)
        context.verify_mode = ssl.CERT_OPTIONAL  # profile 3 stations send one; profiles 1 and 2 need not
    return context


def _fingerprint(paths: list[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


class ReloadingTls:
    """The current server context; `run` swaps in a new one when the files change."""

    def __init__(self, files: TlsFiles, on_reload: Callable[[bool], None] | None = None) -> None:
        self.files = files
        self.context = build_context(files)  # at start-up a bad file is a start-up error
        self._seen = _fingerprint(files.paths())
        self._on_reload = on_reload

    def reload_if_changed(self) -> bool:
        """Rebuild the context if the files' content changed; True if a new context is in use."""
        try:
            seen = _fingerprint(self.files.paths())
            if seen == self._seen:
                return False
            context = build_context(self.files)
        except (OSError, ssl.SSLError, ValueError) as exc:
            # Mid-rotation (key and certificate written one after the other) or broken: keep serving the old.
            log.warning(
                "TLS files changed but cannot be loaded yet; keeping the current ones", extra={"error": str(exc)}
            )
            if self._on_reload is not None:
                self._on_reload(False)
            return False
        self.context, self._seen = context, seen
        log.info("TLS certificate reloaded", extra={"cert_file": self.files.cert_file})
        if self._on_reload is not None:
            self._on_reload(True)
        return True

    async def run(self, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            # Reading three small files: cheap, but off the event loop in case the volume is slow.
            await trio.to_thread.run_sync(self.reload_if_changed)


TlsFailure = Callable[[str, str], None]  # (peer address, reason)


class TlsWebSocketServer(WebSocketServer):
    """trio-websocket's server over plain TCP listeners, doing TLS itself with the current context per
    connection; it notes the peer's certificate for the handler and reports failed handshakes."""

    def __init__(
        self, *args: object, tls: ReloadingTls, handshake_timeout: float, on_failure: TlsFailure, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._tls = tls
        self._tls_timeout = handshake_timeout
        self._on_failure = on_failure

    async def _handle_connection(self, stream: trio.abc.Stream) -> None:
        assert isinstance(stream, trio.SocketStream)
        peer = _peer_address(stream)
        tls_stream = trio.SSLStream(stream, self._tls.context, server_side=True, https_compatible=True)
        reason = ""
        with trio.move_on_after(self._tls_timeout) as scope:
            try:
                await tls_stream.do_handshake()
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                reason = _ssl_reason(exc)
        if scope.cancelled_caught:
            reason = "TLS handshake timed out"
        if reason:
            self._on_failure(peer, reason)
            await trio.aclose_forcefully(tls_stream)
            return
        certificate = tls_stream.getpeercert(binary_form=True)
        current_peer.set(PeerTransport(tls=True, certificate=certificate or None))
        await super()._handle_connection(tls_stream)


def _peer_address(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except OSError:
        return "unknown"


def _ssl_reason(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLError):
        return cause.verify_message if isinstance(cause, ssl.SSLCertVerificationError) else (cause.reason or str(cause))
    return "connection closed during the TLS handshake"
