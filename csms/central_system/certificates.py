"""Station certificate lifecycle: CSR in (SignCertificate), certificate out (CertificateSigned), renewal, expiry.

Renewal end to end: the API asks the station to renew (1.6 ExtendedTriggerMessage SignChargePointCertificate;
2.0.1 TriggerMessage SignChargingStationCertificate), the station sends a CSR, the built-in CA signs it (or an
operator imports what the external CA signed), the chain is delivered as an audited command, the station
installs it and its next connection uses it. Every certificate issued goes into the station's inventory, whose
expiry feeds a metric (and an alert) for certificates expiring within N days.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio
from cryptography import x509

from csms.central_system.security_operations import ProtocolOf
from csms.commands import Actor, CommandService
from csms.stations import SecurityEventRecorder, SecurityStore
from csms.stations.certificate_authority import (
    BuiltInCa,
    CertificateRejected,
    check_csr,
    check_issued,
    inventory_entry,
)
from csms.stations.security_events import INVALID_CERTIFICATE

log = logging.getLogger(__name__)

Payload = dict[str, Any]
REQUESTED_BY = Actor("csms:certificate-authority")
ANSWER_FIRST = 0.2  # seconds: SignCertificate.conf goes out before CertificateSigned.req follows


def renew_call(protocol: str | None) -> tuple[str, Payload]:
    if protocol == "ocpp2.0.1":
        return "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}
    return "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}


def signed_call(chain_pem: str) -> tuple[str, Payload]:
    """The same for both versions: 2.0.1's certificateType defaults to ChargingStationCertificate."""
    return "CertificateSigned", {"certificateChain": chain_pem}


class StationCertificates:
    def __init__(
        self,
        store: SecurityStore,
        commands: CommandService,
        events: SecurityEventRecorder,
        ca: BuiltInCa | None,
        expiry_warning_seconds: float,
        protocol_of: ProtocolOf,
    ) -> None:
        self._protocol_of = protocol_of
        self._store = store
        self._commands = commands
        self._events = events
        self._ca = ca
        self._warning = expiry_warning_seconds
        self._nursery: trio.Nursery | None = None
        self._slots = trio.Semaphore(32)  # deliveries in flight; beyond it a CSR waits for the next renewal
        self._inventory_changed = trio.Event()

    @property
    def mode(self) -> str:
        return "built-in" if self._ca is not None else "external"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    async def sign_certificate(self, station_id: str, csr_pem: str) -> str:
        """SignCertificate from a station: Accepted once the CSR is stored; signing and delivery follow."""
        try:
            csr = check_csr(csr_pem, station_id)
        except CertificateRejected as exc:
            self._events.record(station_id, INVALID_CERTIFICATE, f"CSR rejected: {exc}")
            return "Rejected"
        request_id = await self._store.create_request(station_id, csr_pem)
        if self._ca is not None and self._nursery is not None and self._slots.value:
            await self._slots.acquire()
            self._nursery.start_soon(self._sign_and_deliver, station_id, request_id, csr)
        return "Accepted"

    async def _sign_and_deliver(self, station_id: str, request_id: int, csr: x509.CertificateSigningRequest) -> None:
        try:
            await trio.sleep(ANSWER_FIRST)
            assert self._ca is not None
            leaf = await trio.to_thread.run_sync(self._ca.sign, csr)
            await self.deliver(station_id, request_id, self._ca.chain_pem(leaf), leaf)
        except Exception:
            log.exception("certificate signing failed", extra={"station_id": station_id, "request_id": request_id})
        finally:
            self._slots.release()

    async def import_signed(self, request_id: int, chain_pem: str) -> Payload:
        """External-CA mode: the operator brings the signed chain for a stored CSR. Raises LookupError for an
        unknown request and CertificateRejected for a chain that does not fit it."""
        request = await self._store.request(request_id)
        if request is None:
            raise LookupError(request_id)
        if request["status"] != "pending":
            raise CertificateRejected(f"request {request_id} is {request['status']}, not pending")
        leaf = check_issued(chain_pem, request["csr_pem"], request["station_id"])
        return await self.deliver(request["station_id"], request_id, chain_pem, leaf)

    async def deliver(self, station_id: str, request_id: int, chain_pem: str, leaf: x509.Certificate) -> Payload:
        await self._store.add_certificate(station_id, inventory_entry(leaf))
        self._inventory_changed.set()
        await self._store.update_request(request_id, "signed", certificate_pem=chain_pem)
        action, payload = signed_call(chain_pem)
        protocol = await self._protocol_of(station_id)
        record = await self._commands.submit(station_id, action, payload, REQUESTED_BY, protocol=protocol)
        result = record.get("result") or {}
        delivered = record["status"] == "completed" and result.get("status") == "Accepted"
        detail = None if delivered else f"{action}: {record['status']} {result or record.get('error')}"
        await self._store.update_request(request_id, "delivered" if delivered else "failed", detail=detail)
        if not delivered:
            self._events.record(station_id, INVALID_CERTIFICATE, f"certificate not installed: {detail}")
        return record

    async def renew(self, station_id: str, requested_by: Actor) -> Payload:
        protocol = await self._protocol_of(station_id)
        action, payload = renew_call(protocol)
        return await self._commands.submit(station_id, action, payload, requested_by, protocol=protocol)

    async def watch_expiry(self, on_expiry: Callable[[int, float | None], None], interval: float = 60.0) -> None:
        """Every interval (and when this replica added one): how many inventory certificates expire within the
        warning window, and the soonest expiry."""
        while True:
            try:
                expiring, soonest = await self._store.expiring(self._warning)
                on_expiry(expiring, soonest)
            except Exception as exc:
                log.warning("certificate expiry check failed", extra={"error": repr(exc)})
            with trio.move_on_after(interval):
                await self._inventory_changed.wait()
            self._inventory_changed = trio.Event()
