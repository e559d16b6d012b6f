"""Station certificates (security profile 3): parse, verify against the client CA, and check the identity.

OpenSSL verifies certificates on TLS the replica terminates; certificates a trusted proxy forwards are verified
here, against the same CA bundle, because the proxy's own verdict header is only as good as its configuration.
The identity rule is the specification's (the subject CN is the station id) or, configurably, a SAN entry.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)

MAX_CHAIN = 4


class CertificateRefused(Exception):
    """A presented certificate that must not authenticate anyone; the message says why (for the event log)."""


@dataclass(frozen=True)
class StationCertificate:
    certificate: x509.Certificate
    fingerprint: str  # SHA-256 of the DER, hex: the key revocations are stored under

    @classmethod
    def from_der(cls, der: bytes) -> StationCertificate:
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise CertificateRefused(f"unreadable certificate: {exc}") from None
        return cls(certificate, hashlib.sha256(der).hexdigest())

    @classmethod
    def from_pem(cls, pem: bytes) -> StationCertificate:
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise CertificateRefused(f"unreadable certificate: {exc}") from None
        return cls.from_der(certificate.public_bytes(serialization.Encoding.DER))

    @property
    def serial_number(self) -> str:
        return format(self.certificate.serial_number, "X")

    def names(self, station_id: str, identity: str) -> bool:
        """Whether the certificate names this station: subject CN (the specification) or a SAN entry."""
        if identity == "san":
            try:
                san = self.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            except x509.ExtensionNotFound:
                return False
            values = san.get_values_for_type(x509.DNSName) + san.get_values_for_type(x509.UniformResourceIdentifier)
            return station_id in values
        common_names = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return [str(attr.value) for attr in common_names] == [station_id]


def load_bundle(path: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(Path(path).read_bytes())


def verify_chain(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    roots: list[x509.Certificate],
    now: datetime | None = None,
) -> None:
    """Raise CertificateRefused unless `leaf` chains (through at most MAX_CHAIN links) to one of `roots`,
    every link valid now, signed by its issuer, and every issuer a CA."""
    now = now or datetime.now(UTC)
    current = leaf
    _check_validity(current, now, "certificate")
    for _ in range(MAX_CHAIN):
        for candidate in [*roots, *intermediates]:
            if candidate.subject != current.issuer or not _signed_by(current, candidate):
                continue
            if not _is_ca(candidate):
                raise CertificateRefused("issuer is not a CA certificate")
            _check_validity(candidate, now, "issuer certificate")
            if candidate in roots:
                return
            current = candidate
            break
        else:
            raise CertificateRefused("certificate is not issued by the configured station CA")
    raise CertificateRefused("certificate chain too long")


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_validity(cert: x509.Certificate, now: datetime, what: str) -> None:
    if now < cert.not_valid_before_utc:
        raise CertificateRefused(f"{what} not valid before {cert.not_valid_before_utc.isoformat()}")
    if now > cert.not_valid_after_utc:
        raise CertificateRefused(f"{what} expired at {cert.not_valid_after_utc.isoformat()}")
