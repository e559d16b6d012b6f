"""OCPP 1.6 station-to-CSMS actions.

Each handler commits its effect (through the group-commit writer, fenced by the connection's claim) before it
returns, so a CallResult always means "durable". One message is one unit of work: the parts it writes in
several modules' tables are composed from their write-op builders and submitted once (csms/storage/work.py),
so they commit together or not at all, for one group-commit wait. Handlers hold no per-station state in
memory: everything a replica needs to serve a reconnecting station is in Postgres, which is what makes reclaim
after a failover a non-event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from csms.authorization import IdTagStore
from csms.central_system.certificates import StationCertificates
from csms.central_system.dispatch import Handler, Payload, heartbeat, station_handler
from csms.central_system.plausibility import check_meter, check_start_connector
from csms.central_system.reclaim import reclaim
from csms.central_system.storage_limits import domain_check
from csms.central_system.timestamps import now, parse, wire
from csms.ocpp import CallHandler, Validator
from csms.operations import OperationsRecorder, job_status, transaction_started_op
from csms.stations import BootInfo, LastSeen, StationConnection, StationRegistry, notification, security_event
from csms.storage import Connection, Database, Fence, run_statements
from csms.transactions import (
    SampledValue,
    TransactionLedger,
    remote_started,
    start_statements,
    started_id,
    stop_outcome,
    stop_statements,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CentralSystemSettings:
    heartbeat_interval: int = 300
    boot_status: str = "Accepted"
    # A station that reconnects without booting is asked, after this delay, for what reclaim_trigger names.
    trigger_status_after: float = 2.0
    # CSMS_RECLAIM_TRIGGER: "status" (per-connector StatusNotification: firmware that validates TriggerMessage
    # strictly), "boot" (BootNotification: firmware idle after a disconnect until a boot is accepted), both, none.
    reclaim_trigger: str = "both"


def _samples(meter_values: list[Payload]) -> list[SampledValue]:
    samples = []
    for meter_value in meter_values:
        timestamp = parse(meter_value["timestamp"], "meterValue.timestamp")
        for sv in meter_value["sampledValue"]:
            samples.append(
                SampledValue(
                    timestamp=timestamp,
                    value=sv["value"],
                    measurand=sv.get("measurand", "Energy.Active.Import.Register"),
                    phase=sv.get("phase", ""),
                    unit=sv.get("unit", "Wh"),
                    context=sv.get("context", "Sample.Periodic"),
                    location=sv.get("location", "Outlet"),
                    format=sv.get("format", "Raw"),
                )
            )
    return samples


def _boot_info(p: Payload) -> BootInfo:
    return BootInfo(
        vendor=p.get("chargePointVendor"),
        model=p.get("chargePointModel"),
        serial_number=p.get("chargePointSerialNumber") or p.get("chargeBoxSerialNumber"),
        firmware_version=p.get("firmwareVersion"),
        iccid=p.get("iccid"),
        imsi=p.get("imsi"),
        meter_type=p.get("meterType"),
        meter_serial=p.get("meterSerialNumber"),
    )


class CentralSystem16:
    """The OCPP 1.6 protocol adapter (the gateway's ProtocolAdapter for subprotocol ocpp1.6)."""

    subprotocol = "ocpp1.6"

    def __init__(
        self,
        settings: CentralSystemSettings,
        registry: StationRegistry,
        ledger: TransactionLedger,
        id_tags: IdTagStore,
        operations: OperationsRecorder,
        last_seen: LastSeen,
        db: Database,
    ) -> None:
        self._settings = settings
        self._db = db  # submits the one write of a message whose parts span modules
        self._last_seen = last_seen
        self._registry = registry
        self._ledger = ledger
        self._id_tags = id_tags
        self._operations = operations
        self._domain = domain_check("1.6")
        self.validator = Validator.for_version("1.6")
        self._handlers: dict[str, Handler] = {
            "BootNotification": self._boot_notification,
            "Heartbeat": heartbeat,
            "StatusNotification": self._status_notification,
            "Authorize": self._authorize,
            "StartTransaction": self._start_transaction,
            "StopTransaction": self._stop_transaction,
            "MeterValues": self._meter_values,
            "DataTransfer": self._data_transfer,
            "DiagnosticsStatusNotification": self._diagnostics_status,
            "FirmwareStatusNotification": self._firmware_status,
            # The security extension (also what the 2.0.1 adapter maps onto).
            "SecurityEventNotification": self._security_event,
            "SignCertificate": self._sign_certificate,
            "LogStatusNotification": self._log_status,
            "SignedFirmwareStatusNotification": self._signed_firmware_status,
        }
        self.certificates: StationCertificates | None = None  # set once the command service exists

    def handler_for(self, conn: StationConnection) -> CallHandler:
        return station_handler(conn, self._handlers, self._domain, self._last_seen)

    async def after_connect(self, conn: StationConnection) -> None:
        """Reclaim: a station back without a BootNotification is asked to boot and/or for its connector states."""
        s = self._settings
        await reclaim(conn, s.reclaim_trigger, s.trigger_status_after, self._reclaim_requests)

    async def _reclaim_requests(self, conn: StationConnection, trigger: str) -> list[Payload]:
        requests: list[Payload] = []
        if trigger in ("boot", "both"):
            requests.append({"requestedMessage": "BootNotification"})
        if trigger in ("status", "both"):
            # Never without connectorId: some firmware rejects that. Connector 0 is the station itself.
            known = {0, *await self._registry.connector_ids(conn.station_id)}
            connectors = sorted(c for c in known if c not in conn.statuses_reported)  # reported: already known
            requests += [{"requestedMessage": "StatusNotification", "connectorId": c} for c in connectors]
        return requests

    async def _boot_notification(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        status = await self._registry.boot_policy(conn.station_id) or self._settings.boot_status
        received = now()
        await self._registry.record_boot(fence, _boot_info(p), status, received)
        conn.booted = True
        return {
            "status": status,
            "currentTime": wire(received),
            "interval": self._settings.heartbeat_interval,
        }

    async def _status_notification(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        await self._registry.record_status(
            fence,
            connector_id=p["connectorId"],
            status=p["status"],
            error_code=p["errorCode"],
            info=p.get("info"),
            vendor_id=p.get("vendorId"),
            vendor_error_code=p.get("vendorErrorCode"),
            timestamp=parse(p["timestamp"], "timestamp") if "timestamp" in p else None,
            received_at=now(),
        )
        conn.statuses_reported.add(p["connectorId"])
        return {}

    async def _authorize(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        return {"idTagInfo": await self._id_tags.id_tag_info(p["idTag"])}

    async def _start_transaction(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        check_meter(p["meterStart"], "meterStart")
        if p["connectorId"] <= 0 or p["connectorId"] not in conn.statuses_reported:  # else reported: no reads
            check_start_connector(
                p["connectorId"],
                await self._operations.number_of_connectors(conn.station_id),
                await self._registry.connector_ids(conn.station_id),
            )
        id_tag_info = await self._id_tags.id_tag_info(p["idTag"])
        # Recorded whatever the tag's status: the station may already be charging (offline start), and the
        # spec has it stop the transaction itself when the idTagInfo is not Accepted.
        reservation = p.get("reservationId")
        statements = start_statements(
            conn.station_id,
            connector_id=p["connectorId"],
            id_tag=p["idTag"],
            id_tag_status=id_tag_info["status"],
            meter_start=p["meterStart"],
            timestamp=parse(p["timestamp"], "timestamp"),
            received_at=now(),
            reservation_id=reservation,
        )
        if reservation is None and not await self._operations.remote_start_pending(
            conn.station_id, p["idTag"], p["connectorId"]
        ):  # the common case: statements, merged with every other start of the write batch
            rows = await self._db.write_statements(statements, fence=fence)
            return {"transactionId": started_id(rows), "idTagInfo": id_tag_info}

        async def start_and_close_loop(c: Connection) -> int:
            transaction_id = started_id(await run_statements(c, statements))
            closes = transaction_started_op(
                conn.station_id,
                connector_id=p["connectorId"],
                id_tag=p["idTag"],
                reservation_id=reservation,
                transaction_id=transaction_id,
            )
            if await closes(c):
                await run_statements(c, remote_started(conn.station_id, transaction_id))
            return transaction_id

        transaction_id = await self._db.write(start_and_close_loop, fence=fence)
        return {"transactionId": transaction_id, "idTagInfo": id_tag_info}

    async def _stop_transaction(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        check_meter(p["meterStop"], "meterStop")
        stop = stop_statements(
            conn.station_id,
            transaction_id=p["transactionId"],
            meter_stop=p["meterStop"],
            timestamp=parse(p["timestamp"], "timestamp"),
            received_at=now(),
            reason=p.get("reason", "Local"),  # the spec's default
            id_tag=p.get("idTag"),
            samples=_samples(p.get("transactionData", [])),
        )
        # Only the sender's own transaction is touched: any other id is kept as the sender's unknown stop and
        # answered, so the station can clear its queue.
        outcome = stop_outcome(await self._db.write_statements(stop, fence=fence))
        if outcome == "unknown":
            log.warning(
                "StopTransaction for an unknown transaction recorded",
                extra={"station_id": conn.station_id, "transaction_id": p["transactionId"]},
            )
        if "idTag" in p:
            return {"idTagInfo": await self._id_tags.id_tag_info(p["idTag"])}
        return {}

    async def _meter_values(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        await self._ledger.meter_values(
            fence,
            connector_id=p["connectorId"],
            transaction_id=p.get("transactionId"),
            received_at=now(),
            samples=_samples(p["meterValue"]),
        )
        return {}

    async def _data_transfer(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        # No vendor extensions are registered yet; the exchange is still recorded for the operator.
        answer = "UnknownVendorId"
        await self._registry.record_data_transfer(
            fence,
            vendor_id=p["vendorId"],
            message_id=p.get("messageId"),
            data=p.get("data"),
            answered=answer,
            received_at=now(),
        )
        return {"status": answer}

    async def _diagnostics_status(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        return await self._job_notification(fence, "diagnostics", p["status"])

    async def _firmware_status(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        return await self._job_notification(fence, "firmware", p["status"])

    async def _job_notification(self, fence: Fence, kind: str, status: str) -> Payload:
        """Recorded as sent and tied to the job it reports on, in one write."""
        parts = notification(fence.station_id, kind, status, now()) + job_status(fence.station_id, kind, status)
        await self._db.write_statements(parts, fence=fence)
        return {}

    async def _security_event(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        occurred = parse(p["timestamp"], "timestamp")
        parts = security_event(fence.station_id, p["type"], p.get("techInfo"), occurred, now())
        await self._db.write_statements(parts, fence=fence)
        return {}

    async def _sign_certificate(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        if self.certificates is None:
            return {"status": "Rejected"}
        return {"status": await self.certificates.sign_certificate(conn.station_id, p["csr"])}

    async def _log_status(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        return await self._job_notification(fence, "log", p["status"])

    async def _signed_firmware_status(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        parts = notification(fence.station_id, "signed_firmware", p["status"], now())
        await self._db.write_statements(parts, fence=fence)
        return {}
