"""Security profiles 1-3 with real TLS handshakes against a replica terminating wss:// itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from devcluster.pki import issue
from tests.integration.conftest import Running
from tests.integration.tls_fixtures import Pki, boots, make_pki, refused, security_events, tls_overrides

PASSWORD = "correct-horse-battery"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def replica_overrides(pki: Pki) -> dict[str, str]:
    return tls_overrides(pki)


def wss(csms: Running) -> str:
    return csms.ocpp_url.replace("ws://", "wss://")


async def test_profile_2_needs_tls_and_the_path_id_as_username(csms: Running, pki: Pki) -> None:
    await csms.put_station("CP2", password=PASSWORD, security_profile=2)
    # The replica serves TLS only, so a plain ws:// attempt cannot even speak HTTP to it.
    assert await refused(csms.ocpp_url, "CP2", password=PASSWORD) == 0
    assert await refused(wss(csms), "CP2", password=PASSWORD, username="CP9", ssl_context=pki.context()) == 401
    assert await refused(wss(csms), "CP2", password="wrong-password", ssl_context=pki.context()) == 401
    await boots(wss(csms), "CP2", password=PASSWORD, ssl_context=pki.context())
    async with csms.api() as api:
        station = (await api.get("/api/v1/stations/CP2")).json()
        assert station["security_profile"] == 2 and station["security_profile_explicit"] is True
        events = await security_events(api, "CP2", count=1)
        assert {e["type"] for e in events} >= {"InvalidCredentials"}
        assert all(e["origin"] == "csms" for e in events)


async def test_profile_3_certificate_names_the_station(csms: Running, pki: Pki) -> None:
    await csms.put_station("CP3", security_profile=3)
    await csms.put_station("CP4", security_profile=3)
    good = pki.station("CP3")
    await boots(wss(csms), "CP3", ssl_context=pki.context(good))  # no password needed: the certificate is the proof

    assert await refused(wss(csms), "CP4", ssl_context=pki.context(good)) == 403  # A's certificate, B's path
    assert await refused(wss(csms), "CP3", ssl_context=pki.context()) == 403  # TLS without a certificate: profile 2
    expired = pki.station("CP3", expired=True, stem="CP3-expired")
    assert await refused(wss(csms), "CP3", ssl_context=pki.context(expired)) == 0  # TLS refuses it
    rogue = issue(pki.rogue_ca, pki.directory / "rogue", "CP3")  # right name, CA the CSMS does not trust
    assert await refused(wss(csms), "CP3", ssl_context=pki.context(rogue)) == 0

    async with csms.api() as api:
        types = {e["type"] for e in await security_events(api, count=4)}
        assert {"StationIdentityMismatch", "SecurityProfileTooLow", "TlsHandshakeFailed"} <= types


async def test_revoked_certificate_is_refused(csms: Running, pki: Pki) -> None:
    await csms.put_station("CP5", security_profile=3)
    cert = pki.station("CP5")
    await boots(wss(csms), "CP5", ssl_context=pki.context(cert))
    async with csms.api() as api:
        fingerprint = cert.cert.fingerprint(hashes.SHA256()).hex()
        response = await api.delete(f"/api/v1/stations/CP5/certificates/{fingerprint}")
        assert response.status_code == 204, response.text
    assert await refused(wss(csms), "CP5", ssl_context=pki.context(cert)) == 403
    renewed = pki.station("CP5", stem="CP5-renewed")
    await boots(wss(csms), "CP5", ssl_context=pki.context(renewed))


async def test_profile_1_station_may_use_tls_and_profile_0_needs_nothing(csms: Running, pki: Pki) -> None:
    await csms.put_station("CP1", password=PASSWORD)
    await csms.put_station("CP0")
    await boots(wss(csms), "CP1", password=PASSWORD, ssl_context=pki.context())
    await boots(wss(csms), "CP0", ssl_context=pki.context())
    assert (
        await refused(wss(csms), "CP0", password="whatever-it-is", username="someone", ssl_context=pki.context()) == 401
    )
