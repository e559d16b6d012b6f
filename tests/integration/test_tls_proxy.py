"""TLS at the load balancer: a real TLS-terminating proxy process-alike forwards the client certificate in a header;
the replica (plain ws behind it) verifies it against the client CA and believes it only from trusted proxies."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from devcluster.pki import issue
from tests.integration.conftest import Running
from tests.integration.tls_fixtures import Pki, boots, make_pki, refused, security_events
from tests.integration.tls_proxy import serve_proxy

PASSWORD = "correct-horse-battery"
NO_CHECK_TIME = 0x200000  # OpenSSL's X509_V_FLAG_NO_CHECK_TIME (Python has no name for it)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def trusted() -> str:
    return "127.0.0.1/32"


@pytest.fixture
def replica_overrides(pki: Pki, trusted: str) -> dict[str, str]:
    return {"CSMS_TRUSTED_PROXIES": trusted, "CSMS_TLS_CLIENT_CA_FILE": str(pki.station_ca.cert_file)}


def proxy_context(pki: Pki) -> ssl.SSLContext:
    """The proxy does not verify (like `auth-tls-verify-client: optional_no_ca`): the replica must."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server.cert_file, pki.server.key_file)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(cafile=pki.station_ca.cert_file)
    context.load_verify_locations(cafile=pki.rogue_ca.cert_file)  # lets a rogue certificate reach the replica
    context.verify_flags |= NO_CHECK_TIME  # and an expired one
    return context


@pytest.fixture(params=["nginx", "envoy"])
async def proxy_url(request: pytest.FixtureRequest, csms: Running, pki: Pki) -> AsyncIterator[str]:
    replica_port = int(csms.ocpp_url.rsplit(":", 1)[1].split("/")[0])
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_proxy, proxy_context(pki), replica_port, request.param)
        yield f"wss://127.0.0.1:{port}/ocpp"
        nursery.cancel_scope.cancel()


async def test_forwarded_certificate_is_verified_by_the_replica(csms: Running, pki: Pki, proxy_url: str) -> None:
    await csms.put_station("CP3", security_profile=3)
    await csms.put_station("CP2", password=PASSWORD, security_profile=2)
    good = pki.station("CP3")
    await boots(proxy_url, "CP3", ssl_context=pki.context(good))
    await boots(proxy_url, "CP2", password=PASSWORD, ssl_context=pki.context())  # X-Forwarded-Proto: https
    assert await refused(proxy_url, "CP2", ssl_context=pki.context(good)) == 403  # CP3's certificate
    rogue = issue(pki.rogue_ca, pki.directory / "rogue", "CP3")
    assert await refused(proxy_url, "CP3", ssl_context=pki.context(rogue)) == 403  # the replica checks the CA
    expired = pki.station("CP3", expired=True, stem="CP3-expired")
    assert await refused(proxy_url, "CP3", ssl_context=pki.context(expired)) == 403
    # Straight to the replica, a profile 2 station is plain ws: below its profile.
    assert await refused(csms.ocpp_url, "CP2", password=PASSWORD) == 403
    async with csms.api() as api:
        types = {e["type"] for e in await security_events(api, count=3)}
        assert {"InvalidChargingStationCertificate", "StationIdentityMismatch", "SecurityProfileTooLow"} <= types


@pytest.mark.parametrize("trusted", ["10.0.0.0/8"])
async def test_headers_from_an_untrusted_peer_are_ignored(csms: Running, pki: Pki, proxy_url: str) -> None:
    await csms.put_station("CP3", security_profile=3)
    await csms.put_station("CP2", password=PASSWORD, security_profile=2)
    assert await refused(proxy_url, "CP3", ssl_context=pki.context(pki.station("CP3"))) == 403
    assert await refused(proxy_url, "CP2", password=PASSWORD, ssl_context=pki.context()) == 403
    forged = [(b"X-Forwarded-Proto", b"https")]
    assert await refused(csms.ocpp_url, "CP2", password=PASSWORD, extra_headers=forged) == 403
