"""Station certificate management with real TLS: renewal end to end with the built-in CA (trigger -> CSR ->
signed -> installed -> the next connection uses it), the external-CA mode (CSR export, signed import), the
inventory with expiry and its metric, and security events sent by stations."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devcluster.pki import Issued
from devcluster.station import Payload, SimulatedStation, accept_everything, now_iso
from tests.integration.conftest import Running
from tests.integration.tls_fixtures import Pki, boots, make_pki, security_events, tls_overrides

WARN_DAYS = "400"  # longer than the built-in CA's 365-day certificates: every new one counts as expiring


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def ca_mode() -> str:
    return "built-in"


@pytest.fixture
def replica_overrides(pki: Pki, ca_mode: str) -> dict[str, str]:
    ca = {"CSMS_CA_CERT_FILE": str(pki.station_ca.cert_file), "CSMS_CA_KEY_FILE": str(pki.station_ca.key_file)}
    return tls_overrides(pki, CSMS_CERTIFICATE_EXPIRY_WARNING_DAYS=WARN_DAYS, **(ca if ca_mode == "built-in" else {}))


def csr_for(station_id: str, key: ec.EllipticCurvePrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, station_id)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class RenewingFirmware:
    """A station's certificate handling: on the trigger it makes a key and sends a CSR; it installs the chain."""

    station_id: str
    nursery: trio.Nursery
    station: SimulatedStation | None = None
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    chain: str = ""
    installed: trio.Event = field(default_factory=trio.Event)
    sign_answers: list[str] = field(default_factory=list)

    async def answer(self, action: str, payload: Payload) -> Payload:
        if action == "ExtendedTriggerMessage" and payload["requestedMessage"] == "SignChargePointCertificate":
            self.nursery.start_soon(self.send_csr)
            return {"status": "Accepted"}
        if action == "CertificateSigned":
            self.chain = payload["certificateChain"]
            self.installed.set()
            return {"status": "Accepted"}
        return await accept_everything(action, payload)

    async def send_csr(self) -> None:
        assert self.station is not None
        answer = await self.station.call("SignCertificate", {"csr": csr_for(self.station_id, self.key)})
        self.sign_answers.append(answer["status"])

    def save(self, directory: Path) -> Issued:
        directory.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = directory / "renewed.crt", directory / "renewed.key"
        cert_file.write_text(self.chain)
        key_file.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return Issued(x509.load_pem_x509_certificates(self.chain.encode())[0], self.key, cert_file, key_file)


async def metric_value(csms: Running, sample: str) -> None:
    async with csms.api() as api:
        with trio.fail_after(10):
            while sample not in (await api.get("/metrics")).text:
                await trio.sleep(0.05)


async def request_settled(csms: Running) -> None:
    """Until the CSMS recorded the station's answer to CertificateSigned (answered after it installed)."""
    async with csms.api() as api:
        while (await api.get("/api/v1/certificate-requests")).json()["items"][0]["status"] == "signed":
            await trio.sleep(0.05)


async def test_renewal_end_to_end_with_the_built_in_ca(csms: Running, pki: Pki) -> None:
    url = csms.ocpp_url.replace("ws://", "wss://")
    await csms.put_station("CP3", security_profile=3)
    old = pki.station("CP3")
    async with trio.open_nursery() as nursery:
        firmware = RenewingFirmware("CP3", nursery)
        async with SimulatedStation.connect(url, "CP3", ssl_context=pki.context(old), answer=firmware.answer) as st:
            firmware.station = st
            async with csms.api() as api:
                response = await api.post("/api/v1/stations/CP3/renew-certificate")
                assert response.status_code == 200, response.text
                assert response.json()["ca_mode"] == "built-in"
            with trio.fail_after(15):
                await firmware.installed.wait()
                await request_settled(csms)
    assert firmware.sign_answers == ["Accepted"]
    renewed = firmware.save(pki.directory / "CP3")
    assert renewed.cert.issuer == pki.station_ca.cert.subject
    await boots(url, "CP3", ssl_context=pki.context(renewed))  # the next connection uses the new certificate

    async with csms.api() as api:
        inventory = (await api.get("/api/v1/stations/CP3/certificates")).json()["items"]
        fingerprint = renewed.cert.fingerprint(hashes.SHA256()).hex()
        assert [c["fingerprint"] for c in inventory] == [fingerprint]
        assert inventory[0]["not_after"].startswith(str(renewed.cert.not_valid_after_utc.year))
        requests = (await api.get("/api/v1/certificate-requests")).json()["items"]
        assert [r["status"] for r in requests] == ["delivered"]
    await metric_value(csms, "csms_station_certificates_expiring 1.0")


@pytest.mark.parametrize("ca_mode", ["external"])
async def test_external_ca_exports_csrs_and_imports_certificates(csms: Running, pki: Pki) -> None:
    url = csms.ocpp_url.replace("ws://", "wss://")
    await csms.put_station("CP4", security_profile=3)
    key = ec.generate_private_key(ec.SECP256R1())
    async with trio.open_nursery() as nursery:
        firmware = RenewingFirmware("CP4", nursery, key=key)
        context = pki.context(pki.station("CP4"))
        async with SimulatedStation.connect(url, "CP4", ssl_context=context, answer=firmware.answer) as station:
            firmware.station = station
            wrong = await station.call("SignCertificate", {"csr": csr_for("CP9", key)})
            assert wrong["status"] == "Rejected"  # a CSR naming another station
            assert (await station.call("SignCertificate", {"csr": csr_for("CP4", key)}))["status"] == "Accepted"
            async with csms.api() as api:
                pending = (await api.get("/api/v1/certificate-requests", params={"status": "pending"})).json()
                assert pending["ca_mode"] == "external"
                [request] = pending["items"]
                csr = x509.load_pem_x509_csr(request["csr_pem"].encode())
                other = pki.station("CP4", stem="CP4-other-key").pem.decode()
                path = f"/api/v1/certificate-requests/{request['id']}/certificate"
                mismatch = await api.post(path, json={"certificate_chain": other})
                assert mismatch.status_code == 422 and "key" in mismatch.text
                signed = sign_externally(pki, csr)
                imported = await api.post(path, json={"certificate_chain": signed})
                assert imported.status_code == 200, imported.text
                assert firmware.installed.is_set()
                again = await api.post(path, json={"certificate_chain": signed})
                assert again.status_code == 422  # delivered already
    await boots(url, "CP4", ssl_context=pki.context(firmware.save(pki.directory / "CP4")))


def sign_externally(pki: Pki, csr: x509.CertificateSigningRequest) -> str:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(pki.station_ca.cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(pki.station_ca.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


async def test_security_events_from_stations_are_listed(csms: Running, pki: Pki) -> None:
    url = csms.ocpp_url.replace("ws://", "wss://")
    await csms.put_station("CP5")
    async with SimulatedStation.connect(url, "CP5", ssl_context=pki.context()) as station:
        event = {"type": "TamperDetectionActivated", "timestamp": now_iso(), "techInfo": "lid open"}
        assert await station.call("SecurityEventNotification", event) == {}
        assert await station.call("LogStatusNotification", {"status": "Uploaded", "requestId": 1}) == {}
        assert await station.call("SignedFirmwareStatusNotification", {"status": "Installed", "requestId": 2}) == {}
    async with csms.api() as api:
        [listed] = await security_events(api, "CP5")
        assert (listed["origin"], listed["type"], listed["tech_info"]) == (
            "station",
            "TamperDetectionActivated",
            "lid open",
        )
        kinds = {n["kind"] for n in (await api.get("/api/v1/stations/CP5")).json()["notifications"]}
        assert {"log", "signed_firmware"} <= kinds
        assert (await api.get("/api/v1/security-events", params={"origin": "nobody"})).status_code == 400


async def test_a_2_0_1_station_gets_its_csr_signed_through_the_same_domain(csms: Running, pki: Pki) -> None:
    from devcluster import station201 as v201

    url = csms.ocpp_url.replace("ws://", "wss://")
    await csms.put_station("CP6", security_profile=3)
    signed = trio.Event()

    async def installs(action: str, payload: Payload) -> Payload:
        if action == "CertificateSigned":
            signed.set()
            return {"status": "Accepted"}
        return {"status": "Accepted"}

    context = pki.context(pki.station("CP6"))
    async with SimulatedStation.connect(
        url, "CP6", ssl_context=context, subprotocols=v201.SUBPROTOCOL_201, answer=installs
    ) as station:
        assert (await station.call("BootNotification", v201.boot()))["status"] == "Accepted"
        key = ec.generate_private_key(ec.SECP256R1())
        csr = {"csr": csr_for("CP6", key), "certificateType": "ChargingStationCertificate"}
        assert (await station.call("SignCertificate", csr))["status"] == "Accepted"
        event = {"type": "SettingSystemTime", "timestamp": now_iso()}
        assert await station.call("SecurityEventNotification", event) == {}
        with trio.fail_after(15):
            await signed.wait()
            await request_settled(csms)
    async with csms.api() as api:
        assert [r["status"] for r in (await api.get("/api/v1/certificate-requests")).json()["items"]] == ["delivered"]
        [listed] = await security_events(api, "CP6")
        assert (listed["origin"], listed["type"]) == ("station", "SettingSystemTime")
