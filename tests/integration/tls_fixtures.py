"""A test PKI on disk and a replica serving wss:// with it (shared by the TLS integration tests)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio
from trio_websocket import ConnectionRejected, HandshakeError

from devcluster.pki import Issued, client_context, issue, make_ca
from devcluster.station import SimulatedStation


@dataclass
class Pki:
    directory: Path
    server_ca: Issued  # signs the CSMS's server certificate (stations trust it)
    server: Issued
    station_ca: Issued  # signs station certificates (CSMS_TLS_CLIENT_CA_FILE)
    rogue_ca: Issued  # a CA the CSMS does not trust

    def station(self, station_id: str, **kwargs: object) -> Issued:
        return issue(self.station_ca, self.directory / "stations", station_id, **kwargs)  # type: ignore[arg-type]

    def context(self, station: Issued | None = None) -> ssl.SSLContext:
        return client_context(self.server_ca, station)


def make_pki(tmp_path: Path) -> Pki:
    server_ca = make_ca(tmp_path, "server-ca")
    station_ca = make_ca(tmp_path, "station-ca")
    return Pki(
        tmp_path,
        server_ca,
        issue(server_ca, tmp_path, "csms.test", server=True, stem="server"),
        station_ca,
        make_ca(tmp_path, "rogue-ca"),
    )


def tls_overrides(pki: Pki, **extra: str) -> dict[str, str]:
    return {
        "CSMS_TLS_CERT_FILE": str(pki.server.cert_file),
        "CSMS_TLS_KEY_FILE": str(pki.server.key_file),
        "CSMS_TLS_CLIENT_CA_FILE": str(pki.station_ca.cert_file),
        "CSMS_TLS_RELOAD_SECONDS": "0.2",
        **extra,
    }


async def refused(url: str, station_id: str, **kwargs: object) -> int:
    """Connect, expecting an HTTP refusal before the upgrade; returns its status (0: TLS itself failed)."""
    try:
        async with SimulatedStation.connect(url, station_id, connect_timeout=5, **kwargs):  # type: ignore[arg-type]
            pass
    except ConnectionRejected as exc:
        return int(exc.status_code)
    except (HandshakeError, trio.BrokenResourceError, ssl.SSLError, OSError):
        return 0
    raise AssertionError(f"{station_id} was accepted")


async def boots(url: str, station_id: str, **kwargs: object) -> None:
    async with SimulatedStation.connect(url, station_id, connect_timeout=5, **kwargs) as station:  # type: ignore[arg-type]
        answer = await station.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        assert answer["status"] == "Accepted"


async def security_events(api: httpx.AsyncClient, station_id: str | None = None, count: int = 1) -> list[dict]:
    """The events listed for a station, waiting (bounded) for `count` of them: they are flushed once a second."""
    params = {"station_id": station_id} if station_id else {}
    with trio.fail_after(10):
        while True:
            response = await api.get("/api/v1/security-events", params=params)
            assert response.status_code == 200, response.text
            items: list[dict] = response.json()["items"]
            if len(items) >= count:
                return items
            await trio.sleep(0.1)
