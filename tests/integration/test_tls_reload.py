"""Certificate hot reload: renewed files are served to new handshakes within the reload interval, while stations
connected with the old certificate stay connected and keep being served."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio

from devcluster.pki import issue, make_ca
from devcluster.station import SimulatedStation
from tests.integration.conftest import Running
from tests.integration.tls_fixtures import Pki, make_pki, tls_overrides

PASSWORD = "correct-horse-battery"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def replica_overrides(pki: Pki) -> dict[str, str]:
    return tls_overrides(pki)


async def served_serial(port: int, context: ssl.SSLContext) -> int:
    from cryptography import x509

    stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=context)
    try:
        await stream.do_handshake()
        der = stream.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number
    finally:
        await trio.aclose_forcefully(stream)


async def reload_counted(csms: Running, outcome: str) -> None:
    sample = f'csms_tls_reloads_total{{outcome="{outcome}"}} 1.0'
    async with csms.api() as api:
        with trio.fail_after(10):
            while sample not in (await api.get("/metrics")).text:
                await trio.sleep(0.05)


async def test_renewed_certificate_served_without_dropping_stations(csms: Running, pki: Pki) -> None:
    url = csms.ocpp_url.replace("ws://", "wss://")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    await csms.put_station("CP1", password=PASSWORD, security_profile=2)
    renewed_ca = make_ca(pki.directory / "renewed", "server-ca-2")
    both = pki.context()
    both.load_verify_locations(cafile=renewed_ca.cert_file)

    async with SimulatedStation.connect(url, "CP1", password=PASSWORD, ssl_context=pki.context()) as station:
        await station.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        old = await served_serial(port, both)
        renewed = issue(renewed_ca, pki.directory / "renewed", "csms.test", server=True, stem="server")
        # Written the way a Secret volume update may look to a reader: key first, certificate a moment later.
        pki.server.key_file.write_bytes(renewed.key_file.read_bytes())
        await reload_counted(csms, "failed")  # a reload saw the mismatched pair and kept the old one
        assert await served_serial(port, both) == old
        pki.server.cert_file.write_bytes(renewed.cert_file.read_bytes())
        with trio.fail_after(30):  # the promise: renewed files are in use within 30 s (here the tick is 0.2 s)
            while await served_serial(port, both) == old:
                await trio.sleep(0.1)
        assert await served_serial(port, both) == renewed.cert.serial_number
        await reload_counted(csms, "loaded")
        # The station connected before the renewal is still connected and served.
        assert "currentTime" in await station.call("Heartbeat", {})

    # New stations need the new CA now.
    renewed_only = ssl.create_default_context(cafile=str(renewed_ca.cert_file))
    async with SimulatedStation.connect(url, "CP1", password=PASSWORD, ssl_context=renewed_only) as station:
        assert "currentTime" in await station.call("Heartbeat", {})
