"""Station certificates from CSRs: checks every mode shares, and the built-in CA.

The built-in CA signs with a key read from a file (a mounted Kubernetes Secret); the key never leaves the
process, is never written anywhere and never goes through the API or Postgres. Without one, the CSMS runs in
external-CA mode: CSRs are kept for export, and the certificates the operator's CA signs are imported through
the API, checked against their CSR (same public key, names the station) before a station gets them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MAX_CSR_BYTES = 5500  # the SignCertificate.req csr field's limit


class CertificateRejected(Exception):
    """A CSR or certificate that must not be signed or installed; the message says why."""


def check_csr(pem: str, station_id: str) -> x509.CertificateSigningRequest:
    """A CSR the CSMS may have signed: well-formed, self-signed correctly, naming this station (subject CN)."""
    if len(pem) > MAX_CSR_BYTES:
        raise CertificateRejected("CSR too large")
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError as exc:
        raise CertificateRejected(f"not a PEM CSR: {exc}") from None
    if not csr.is_signature_valid:
        raise CertificateRejected("CSR signature invalid")
    names = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [station_id]:
        raise CertificateRejected(f"CSR subject CN must be the station id {station_id}")
    if not isinstance(csr.public_key(), rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise CertificateRejected("unsupported key type")
    return csr


def check_issued(chain_pem: str, csr_pem: str, station_id: str) -> x509.Certificate:
    """An externally signed certificate for a stored CSR: same key, same station; returns the leaf."""
    try:
        leaf = x509.load_pem_x509_certificates(chain_pem.encode())[0]
    except (ValueError, IndexError) as exc:
        raise CertificateRejected(f"not a PEM certificate chain: {exc}") from None
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    if _spki(leaf.public_key()) != _spki(csr.public_key()):
        raise CertificateRejected("certificate is not for the key of this CSR")
    names = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [station_id]:
        raise CertificateRejected(f"certificate subject CN must be the station id {station_id}")
    if leaf.not_valid_after_utc <= datetime.now(UTC):
        raise CertificateRejected("certificate already expired")
    return leaf


def inventory_entry(cert: x509.Certificate) -> dict[str, Any]:
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "fingerprint": hashlib.sha256(der).hexdigest(),
        "serial_number": format(cert.serial_number, "X"),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc,
        "not_after": cert.not_valid_after_utc,
        "pem": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }


def _spki(key: Any) -> bytes:
    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


class BuiltInCa:
    """Signs station CSRs with the CA key from `key_file`; `chain` (the CA certificate) goes with each one."""

    def __init__(self, cert_file: str, key_file: str, validity_days: int) -> None:
        self.certificate = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("the CA key must be RSA or EC")
        if _spki(key.public_key()) != _spki(self.certificate.public_key()):
            raise ValueError("the CA key does not belong to the CA certificate")
        self._key = key
        self._days = validity_days

    def sign(self, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        now = datetime.now(UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.certificate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=self._days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )

    def chain_pem(self, leaf: x509.Certificate) -> str:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, self.certificate)).decode()
