"""Station certificate checks without a server: forwarded-header parsing, chain verification, identity, CSRs,
trusted proxies, the settings that configure them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from csms.config import ConfigError, load
from csms.stations.certificate_authority import BuiltInCa, CertificateRejected, check_csr, check_issued
from csms.stations.client_certs import CertificateRefused, StationCertificate, verify_chain
from csms.stations.forwarded import from_headers, is_trusted, parse_networks
from csms.stations.security_store import StationCredentials
from devcluster.pki import issue, make_ca


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_nginx_and_envoy_headers_carry_the_certificate(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, "ca")
    station = issue(ca, tmp_path, "CP1")
    nginx = from_headers([(b"ssl-client-cert", quote(pem(station.cert), safe="").encode())])
    assert nginx.tls and nginx.certificate is not None and nginx.certificate.certificate == station.cert
    element = f'By=spiffe://a;Hash=1;Cert="{quote(pem(station.cert), safe="")}";Chain="{quote(pem(ca.cert))}"'
    envoy = from_headers([(b"X-Forwarded-Client-Cert", f'By=x;Subject="CN=a,O=b",{element}'.encode())])
    assert envoy.certificate is not None and envoy.certificate.certificate == station.cert
    assert envoy.chain == (ca.cert,)
    assert from_headers([(b"x-forwarded-proto", b"https")]).tls
    plain = from_headers([(b"x-forwarded-proto", b"http")])
    assert not plain.tls and plain.certificate is None
    assert from_headers([(b"ssl-client-cert", b"")]).certificate is None  # asked, none sent
    with pytest.raises(CertificateRefused):
        from_headers([(b"ssl-client-cert", b"-----BEGIN%20CERTIFICATE-----%0Agarbage")])
    with pytest.raises(CertificateRefused, match="too large"):
        from_headers([(b"ssl-client-cert", b"x" * 20_000)])


def test_chain_verification_and_identity(tmp_path: Path) -> None:
    ca, rogue = make_ca(tmp_path, "ca"), make_ca(tmp_path, "rogue")
    good = StationCertificate.from_pem(issue(ca, tmp_path, "CP1", san_dns=("cp1.example",)).pem)
    verify_chain(good.certificate, [], [ca.cert])
    with pytest.raises(CertificateRefused, match="not issued"):
        verify_chain(good.certificate, [], [rogue.cert])
    expired = issue(ca, tmp_path, "CP1", expired=True, stem="old")
    with pytest.raises(CertificateRefused, match="expired"):
        verify_chain(expired.cert, [], [ca.cert])
    not_a_ca = issue(ca, tmp_path, "CP9")  # a leaf cannot sign another certificate into the chain
    forged = issue(
        type(ca)(not_a_ca.cert, not_a_ca.key, not_a_ca.cert_file, not_a_ca.key_file), tmp_path, "CP1", stem="f"
    )
    with pytest.raises(CertificateRefused):
        verify_chain(forged.cert, [not_a_ca.cert], [ca.cert])
    assert good.names("CP1", "cn") and not good.names("CP2", "cn")
    assert good.names("cp1.example", "san") and not good.names("CP1", "san")
    assert len(good.fingerprint) == 64 and good.serial_number


def test_trusted_proxies(tmp_path: Path) -> None:
    networks = parse_networks(["10.0.0.0/8", "fd00::/8", "192.168.1.7"])
    assert is_trusted("10.1.2.3", networks) and is_trusted("::ffff:10.1.2.3", networks)
    assert is_trusted("fd00::1", networks) and is_trusted("192.168.1.7", networks)
    assert not is_trusted("192.168.1.8", networks) and not is_trusted("not-an-ip", networks)
    assert not is_trusted("10.0.0.1", ())


def csr(name: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return key, request.public_bytes(serialization.Encoding.PEM).decode()


def test_built_in_ca_signs_only_csrs_naming_the_station(tmp_path: Path) -> None:
    ca_files = make_ca(tmp_path, "ca")
    ca = BuiltInCa(str(ca_files.cert_file), str(ca_files.key_file), validity_days=30)
    _, request = csr("CP1")
    leaf = ca.sign(check_csr(request, "CP1"))
    verify_chain(leaf, [], [ca_files.cert])
    assert StationCertificate.from_pem(pem(leaf).encode()).names("CP1", "cn")
    with pytest.raises(CertificateRejected, match="station id"):
        check_csr(request, "CP2")
    with pytest.raises(CertificateRejected):
        check_csr("not a csr", "CP1")
    check_issued(ca.chain_pem(leaf), request, "CP1")
    _, other = csr("CP1")
    with pytest.raises(CertificateRejected, match="key"):
        check_issued(ca.chain_pem(leaf), other, "CP1")
    wrong_key = make_ca(tmp_path, "other")
    with pytest.raises(ValueError, match="does not belong"):
        BuiltInCa(str(ca_files.cert_file), str(wrong_key.key_file), validity_days=30)


def test_required_profile_defaults_keep_existing_stations_working() -> None:
    assert StationCredentials(True).required_profile == 0
    assert StationCredentials(True, "hash").required_profile == 1
    assert StationCredentials(True, "hash", profile=2).required_profile == 2
    assert StationCredentials(True, None, profile=3).required_profile == 3


def test_settings_are_checked_with_one_line() -> None:
    base = {"CSMS_DATABASE_URL": "postgresql://x@y/z"}
    with pytest.raises(ConfigError, match="CSMS_TRUSTED_PROXIES"):
        load(environ={**base, "CSMS_TRUSTED_PROXIES": "10.0.0.0/8,nonsense"})
    with pytest.raises(ConfigError, match="CSMS_CA_CERT_FILE and CSMS_CA_KEY_FILE"):
        load(environ={**base, "CSMS_CA_CERT_FILE": "/x"})
    with pytest.raises(ConfigError, match="CSMS_TLS_CLIENT_CA_FILE"):
        load(environ={**base, "CSMS_TLS_CLIENT_CA_FILE": "/ca.pem"})
    with pytest.raises(ConfigError, match="CSMS_TLS_STATION_IDENTITY"):
        load(environ={**base, "CSMS_TLS_STATION_IDENTITY": "ou"})
    with pytest.raises(ConfigError, match="CSMS_RETENTION_ARCHIVE_URL='ftp://x/y': must be a directory or a URL"):
        load(environ={**base, "CSMS_RETENTION_ARCHIVE_URL": "ftp://x/y"})
    for archive in ("/var/archive", "file:///var/archive", "s3://bucket/meter-values", "gs://bucket/p"):
        assert load(environ={**base, "CSMS_RETENTION_ARCHIVE_URL": archive}).retention_archive_url == archive
    config = load(environ={**base, "CSMS_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1", "CSMS_TLS_CLIENT_CA_FILE": "/c"})
    assert config.trusted_proxies == ("10.0.0.0/8", "127.0.0.1")
