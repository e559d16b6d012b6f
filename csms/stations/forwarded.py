"""TLS terminated by a load balancer or ingress: what a trusted proxy says about the station's connection.

Only a peer inside `CSMS_TRUSTED_PROXIES` is believed; from anyone else these headers are ignored, whatever
they say. Two conventions are read:

- ingress-nginx (`nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream`): `ssl-client-cert`, the
  URL-escaped PEM of the client certificate;
- Envoy: `x-forwarded-client-cert`, elements `Key=value;...` separated by commas, one per proxy hop; the last
  element is the one our proxy added, and its `Cert` (and `Chain`) hold the URL-escaped PEM.

The proxy reached the station over TLS when it forwards a certificate or says `X-Forwarded-Proto: https`.
The certificate is verified here against the client CA (the proxy's verdict is not taken on trust).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509

from csms.stations.client_certs import CertificateRefused, StationCertificate

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NGINX_HEADER = b"ssl-client-cert"
ENVOY_HEADER = b"x-forwarded-client-cert"
PROTO_HEADER = b"x-forwarded-proto"
MAX_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True)
class Forwarded:
    tls: bool
    certificate: StationCertificate | None
    chain: tuple[x509.Certificate, ...] = ()


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses) of the proxies whose headers count; raises ValueError naming a bad one."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            raise ValueError(f"{cidr!r} is not an IP network (CIDR) or address") from None
    return tuple(networks)


def is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def from_headers(headers: Sequence[tuple[bytes, bytes]]) -> Forwarded:
    """Read a trusted proxy's headers; raises CertificateRefused for a certificate header that cannot be read."""
    values = {name.lower(): value for name, value in headers}
    proto = values.get(PROTO_HEADER, b"").decode("latin-1").strip().lower()
    if ENVOY_HEADER in values:
        leaf, chain = _envoy(_bounded(values[ENVOY_HEADER]))
    elif NGINX_HEADER in values:
        leaf, chain = _pem(unquote(_bounded(values[NGINX_HEADER]))), ()
    else:
        return Forwarded(tls=proto in ("https", "wss"), certificate=None)
    return Forwarded(tls=True, certificate=leaf, chain=chain)


def _bounded(raw: bytes) -> str:
    if len(raw) > MAX_HEADER_BYTES:
        raise CertificateRefused("forwarded certificate header too large")
    return raw.decode("latin-1")


def _pem(text: str) -> StationCertificate | None:
    text = text.strip()
    if not text:
        return None  # the proxy asked, the station sent none
    return StationCertificate.from_pem(text.encode("latin-1"))


def _envoy(header: str) -> tuple[StationCertificate | None, tuple[x509.Certificate, ...]]:
    elements = _split(header, ",")
    fields: dict[str, str] = {}
    for pair in _split(elements[-1], ";"):
        key, _, value = pair.partition("=")
        fields[key.strip().lower()] = value.strip().strip('"')
    leaf = _pem(unquote(fields.get("cert", "")))
    chain_pem = unquote(fields.get("chain", "")).strip()
    try:
        chain = tuple(x509.load_pem_x509_certificates(chain_pem.encode("latin-1"))) if chain_pem else ()
    except ValueError as exc:
        raise CertificateRefused(f"unreadable forwarded chain: {exc}") from None
    return leaf, chain


def _split(text: str, separator: str) -> list[str]:
    """Split on `separator` outside double quotes (XFCC quotes values that contain , ; or =)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts
