"""The security-profile policy of a handshake: what the connection proves, and whether that is enough.

A connection reaches profile 3 with a valid certificate that names the station (and is not revoked), profile 2
with TLS and the right Basic password, profile 1 with the right password, 0 with nothing. A station is refused
(403, and a security event) when the connection does not reach the profile stored for it; a certificate for
another station, an invalid forwarded certificate or a Basic username other than the path id is refused on every
profile. Everything here runs before any password hashing, so a refused downgrade costs no PBKDF2.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NoReturn

from trio_websocket import Endpoint, WebSocketRequest

from csms.stations import security_events as ev
from csms.stations.client_certs import CertificateRefused, StationCertificate, load_bundle, verify_chain
from csms.stations.forwarded import Network, from_headers, is_trusted
from csms.stations.handshake import UNAUTHORIZED_HEADERS, Refusal
from csms.stations.security_events import SecurityEventRecorder
from csms.stations.security_store import StationCredentials
from csms.stations.tls import current_peer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SecuritySettings:
    identity: str = "cn"  # "cn" (the specification) or "san"
    trusted_proxies: tuple[Network, ...] = ()
    client_ca_file: str = ""  # verifies certificates forwarded by trusted proxies


@dataclass(frozen=True)
class Peer:
    address: str
    tls: bool
    certificate: StationCertificate | None


class HandshakeSecurity:
    def __init__(self, settings: SecuritySettings, events: SecurityEventRecorder | None = None) -> None:
        self._settings = settings
        self._events = events
        self._roots = load_bundle(settings.client_ca_file) if settings.client_ca_file else []
        self._roots_source = _read(settings.client_ca_file)

    def reload_client_ca(self) -> None:
        """Pick up a rotated CA bundle for forwarded certificates (the TLS context reloads its own copy)."""
        source = _read(self._settings.client_ca_file)
        if not source or source == self._roots_source:
            return
        try:
            self._roots = load_bundle(self._settings.client_ca_file)
        except ValueError as exc:
            log.warning(
                "client CA bundle changed but cannot be read; keeping the current one", extra={"error": str(exc)}
            )
            return
        self._roots_source = source
        log.info("client CA bundle reloaded")

    def peer(self, request: WebSocketRequest, station_id: str) -> Peer:
        """What the transport proves: TLS here or at a trusted proxy, and a verified certificate if any."""
        address = request.remote.address.compressed if isinstance(request.remote, Endpoint) else str(request.remote)
        transport = current_peer.get()
        try:
            if transport.tls:  # OpenSSL verified it against the client CA during the handshake
                cert = StationCertificate.from_der(transport.certificate) if transport.certificate else None
                return Peer(address, True, cert)
            if not is_trusted(address, self._settings.trusted_proxies):
                return Peer(address, False, None)  # forwarded headers from anyone else mean nothing
            forwarded = from_headers(request.headers)
            if forwarded.certificate is not None:
                if not self._roots:
                    raise CertificateRefused("no CSMS_TLS_CLIENT_CA_FILE to verify forwarded certificates with")
                verify_chain(forwarded.certificate.certificate, list(forwarded.chain), self._roots)
            return Peer(address, forwarded.tls, forwarded.certificate)
        except CertificateRefused as exc:
            self._refuse(station_id, ev.INVALID_CERTIFICATE, 403, str(exc))

    def check_username(self, station_id: str, credentials: tuple[str, str] | None) -> None:
        """On every profile: Basic auth names the station of the path, or it is refused."""
        if credentials is not None and credentials[0] != station_id:
            self._refuse(station_id, ev.INVALID_CREDENTIALS, 401, "Basic username is not the station id")

    def check(self, station_id: str, creds: StationCredentials, peer: Peer) -> bool:
        """Refuse what is below the station's profile; True if the certificate authenticated the station (so
        no password is needed)."""
        cert = peer.certificate
        if cert is not None:
            if not cert.names(station_id, self._settings.identity):
                subject = cert.certificate.subject.rfc4514_string()
                self._refuse(station_id, ev.IDENTITY_MISMATCH, 403, f"certificate names another station ({subject})")
            if cert.fingerprint in creds.revoked:
                self._refuse(station_id, ev.INVALID_CERTIFICATE, 403, f"certificate {cert.serial_number} was revoked")
            return True
        required = creds.required_profile
        if required == 3:
            self._refuse(station_id, ev.PROFILE_TOO_LOW, 403, "security profile 3 requires a client certificate")
        if required == 2 and not peer.tls:
            self._refuse(station_id, ev.PROFILE_TOO_LOW, 403, "security profile 2 requires TLS (wss://)")
        if required >= 1 and creds.password_hash is None:
            self._refuse(station_id, ev.INVALID_CREDENTIALS, 401, f"profile {required} needs a password; none is set")
        return False

    def failed_password(self, station_id: str) -> None:
        if self._events is not None:
            self._events.record(station_id, ev.INVALID_CREDENTIALS, "bad Basic password")

    def record(self, station_id: str | None, event_type: str, tech_info: str) -> None:
        if self._events is not None:
            self._events.record(station_id, event_type, tech_info)

    def _refuse(self, station_id: str, event_type: str, status: int, reason: str) -> NoReturn:
        self.record(station_id, event_type, reason)
        raise Refusal(status, reason, UNAUTHORIZED_HEADERS if status == 401 else ())


def _read(path: str) -> bytes:
    if not path:
        return b""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""
