"""OCPP 2.0.1 station-to-CSMS actions over the same domain as 1.6.

Like 1.6, each handler commits before it returns (fenced, group-committed), keeps no per-station state in
memory beyond the connection, and is idempotent under retries. What is 2.0.1's own: the boot rules (a station
not Accepted may only send what the spec allows), TransactionEvent (see csms.transactions.transaction_events),
EVSE-level connector status, typed idTokens, and the Notify* reports kept per station (GET .../events).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson

from csms.authorization import IdTagStore
from csms.central_system import v201_inputs as inputs
from csms.central_system.certificates import StationCertificates
from csms.central_system.dispatch import Handler, Payload, heartbeat, station_handler
from csms.central_system.reclaim import reclaim
from csms.central_system.storage_limits import domain_check
from csms.central_system.timestamps import now, parse, wire
from csms.central_system.v16 import CentralSystemSettings
from csms.ocpp import PROPERTY_CONSTRAINT_VIOLATION, SECURITY_ERROR, CallHandler, OcppError, Validator
from csms.operations import (
    OperationsRecorder,
    job_status,
    remote_start_linked_op,
    reservation_status,
    reservation_used,
)
from csms.stations import LastSeen, StationConnection, StationRegistry, charging, event, security_event
from csms.storage import Connection, Database, Fence, run_statements
from csms.transactions import (
    EventOutcome,
    TransactionEventInput,
    TransactionLedger,
    event_statements,
    outcome_of,
    transaction_event_op,
)

log = logging.getLogger(__name__)

# NotifyReport parts go to the device model (DeviceModel.record_report, wired by the composition root).
ReportHook = Callable[[Fence, str, Payload], Awaitable[None]]

# What a station whose boot is Pending may send (B02): its boot again, the reports the CSMS asks for while it
# configures the station, and whatever the CSMS asked for with TriggerMessage on this connection.
PENDING_ALLOWED = frozenset({"BootNotification", "NotifyReport"})
STATION_CERTIFICATE = "ChargingStationCertificate"
INVALID_CSR = {"reasonCode": "InvalidCSR", "additionalInfo": "unreadable, badly signed, or not naming this station"}
NOT_CONFIGURED = {"reasonCode": "NotConfigured", "additionalInfo": "this CSMS has no certificate authority configured"}

# Reports kept as sent, with the field that summarises them in the operator's list.
_KEPT_REPORTS: dict[str, str | None] = {
    "NotifyEvent": None,
    "NotifyMonitoringReport": None,
    "SecurityEventNotification": "type",
    "FirmwareStatusNotification": "status",
    "LogStatusNotification": "status",
    "PublishFirmwareStatusNotification": "status",
    "ReservationStatusUpdate": "reservationUpdateStatus",
    "NotifyChargingLimit": None,
    "ClearedChargingLimit": "chargingLimitSource",
    "NotifyEVChargingNeeds": None,
    "NotifyEVChargingSchedule": None,
    "ReportChargingProfiles": "chargingLimitSource",
    "NotifyDisplayMessages": None,
    "NotifyCustomerInformation": None,
}
# The answer to a kept report, where it is more than {} (we compute no schedules: needs are not met here).
_REPORT_ANSWERS: dict[str, Payload] = {
    "NotifyEVChargingNeeds": {"status": "Rejected"},
    "NotifyEVChargingSchedule": {"status": "Accepted"},
}


class CentralSystem201:
    """The OCPP 2.0.1 protocol adapter (the gateway's ProtocolAdapter for subprotocol ocpp2.0.1)."""

    subprotocol = "ocpp2.0.1"

    def __init__(
        self,
        settings: CentralSystemSettings,
        registry: StationRegistry,
        ledger: TransactionLedger,
        id_tags: IdTagStore,
        operations: OperationsRecorder,
        last_seen: LastSeen,
        db: Database,
        record_report: ReportHook | None = None,
    ) -> None:
        self._settings = settings
        self._db = db  # submits the one write of a message whose parts span modules
        self._registry = registry
        self._ledger = ledger
        self._id_tags = id_tags
        self._operations = operations
        self._last_seen = last_seen
        self._record_report = record_report
        self._domain = domain_check("2.0.1")
        self.validator = Validator.for_version("2.0.1")
        self._handlers: dict[str, Handler] = {
            "BootNotification": self._boot_notification,
            "Heartbeat": heartbeat,
            "StatusNotification": self._status_notification,
            "Authorize": self._authorize,
            "TransactionEvent": self._transaction_event,
            "MeterValues": self._meter_values,
            "NotifyReport": self._notify_report,
            "DataTransfer": self._data_transfer,
            "SignCertificate": self._sign_certificate,
            "Get15118EVCertificate": self._get_15118_ev_certificate,
            "GetCertificateStatus": self._get_certificate_status,
            **{action: self._keeper(action) for action in _KEPT_REPORTS},
        }
        self.actions = frozenset(self._handlers)  # what this adapter answers (the coverage test checks it)
        self.certificates: StationCertificates | None = None  # set once the command service exists

    def handler_for(self, conn: StationConnection) -> CallHandler:
        async def gate(action: str) -> None:
            await self._boot_rules(conn, action)

        return station_handler(conn, self._handlers, self._domain, self._last_seen, gate)

    async def _boot_rules(self, conn: StationConnection, action: str) -> None:
        """B02/B03: until its boot is Accepted a station gets SecurityError for what it may not send yet.
        A station back without booting (a reconnect, a failover) is judged by its last boot on any replica."""
        if action == "BootNotification":
            return
        if conn.boot_status is None:
            conn.boot_status = await self._registry.last_boot_status(conn.station_id) or "none"
        status = conn.boot_status
        if status == "Accepted" or (status == "Pending" and (action in PENDING_ALLOWED or action in conn.triggered)):
            return
        told = "never booted" if status == "none" else f"boot is {status}"
        raise OcppError(SECURITY_ERROR, f"{action} is not allowed before the boot is accepted ({told})")

    async def after_connect(self, conn: StationConnection) -> None:
        """Reclaim: a station back without a BootNotification is asked (2.0.1 TriggerMessage) to boot and/or
        for the status of every connector it reported, as CSMS_RECLAIM_TRIGGER says."""
        s = self._settings
        await reclaim(conn, s.reclaim_trigger, s.trigger_status_after, self._reclaim_requests)

    async def _reclaim_requests(self, conn: StationConnection, trigger: str) -> list[Payload]:
        requests: list[Payload] = []
        if trigger in ("boot", "both"):
            requests.append({"requestedMessage": "BootNotification"})
        if trigger in ("status", "both"):
            known = await self._registry.evse_connectors(conn.station_id)
            if not known:  # no EVSE known: all of them
                requests.append({"requestedMessage": "StatusNotification"})
            requests += [
                {"requestedMessage": "StatusNotification", "evse": {"id": e, "connectorId": c}}
                for e, c in known
                if (e, c) not in conn.statuses_reported  # reported since reconnecting: already known
            ]
        return requests

    # -- handlers --------------------------------------------------------------------------------------------

    async def _boot_notification(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        status = await self._registry.boot_policy(conn.station_id) or self._settings.boot_status
        received = now()
        await self._registry.record_boot(fence, inputs.boot_info(p), status, received)
        conn.booted, conn.boot_status = True, status
        # Pending/Rejected: the interval is when to boot again (B02/B03); Accepted: the heartbeat interval.
        return {"status": status, "currentTime": wire(received), "interval": self._settings.heartbeat_interval}

    async def _status_notification(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        if p["evseId"] <= 0 or p["connectorId"] <= 0:
            raise OcppError(PROPERTY_CONSTRAINT_VIOLATION, "evseId and connectorId are numbered from 1")
        await self._registry.record_status(
            fence,
            evse_id=p["evseId"],
            connector_id=p["connectorId"],
            status=p["connectorStatus"],
            error_code="NoError",  # 2.0.1 reports faults through NotifyEvent, kept under the station's events
            info=None,
            vendor_id=None,
            vendor_error_code=None,
            timestamp=parse(p["timestamp"], "timestamp"),
            received_at=now(),
        )
        conn.statuses_reported.add((p["evseId"], p["connectorId"]))
        return {}

    async def _authorize(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        token = p["idToken"]
        answer: Payload = {"idTokenInfo": await self._id_tags.id_token_info(token["idToken"], token["type"])}
        if "certificate" in p or "iso15118CertificateHashData" in p:
            # No certificate authority / OCSP responder is configured, so no contract certificate can be
            # chained to a trusted root: say so rather than vouch for it (the security issue completes this).
            answer["certificateStatus"] = "CertChainError"
        return answer

    async def _transaction_event(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        if p.get("evse", {}).get("id", 1) <= 0:
            raise OcppError(PROPERTY_CONSTRAINT_VIOLATION, "evse.id is numbered from 1 (EVSE 0 is the station)")
        token = p.get("idToken")
        info = await self._id_tags.id_token_info(token["idToken"], token["type"]) if token else None
        event = inputs.transaction_event(p, now(), info["status"] if info else None)
        remote_start_id, reservation_id = event.remote_start_id, event.reservation_id
        if (
            remote_start_id is None
            and reservation_id is None
            and not (event.charging_state or event.event_type != "Updated")
        ):
            # Nothing else to write (most events: periodic readings): plain statements, merged batch-wide.
            rows = await self._db.write_statements(event_statements(conn.station_id, event), fence=fence)
            return self._after_event(conn, event, info, outcome_of(rows))
        record = transaction_event_op(fence, event)

        async def record_with_effects(c: Connection) -> EventOutcome:
            outcome = await record(c)
            if remote_start_id is not None:  # the RequestStartTransaction it answers (issue 10 part B)
                await remote_start_linked_op(conn.station_id, remote_start_id, event.station_tx_id)(c)
            if reservation_id is not None:  # the reservation it charges on is used
                await run_statements(c, reservation_used(conn.station_id, reservation_id, outcome.transaction_id))
            if outcome.new and outcome.evse_id and (event.charging_state or event.event_type != "Updated"):
                evse = (outcome.evse_id, outcome.connector_id)
                await run_statements(c, charging(conn.station_id, *evse, event.station_tx_id, outcome.charging))
            return outcome

        return self._after_event(conn, event, info, await self._db.write(record_with_effects, fence=fence))

    def _after_event(
        self, conn: StationConnection, event: TransactionEventInput, info: Payload | None, outcome: EventOutcome
    ) -> Payload:
        """What follows a committed event: the conflict warning, the domain events, the answer."""
        if outcome.conflict:  # kept for investigation and flagged on the transaction; the station is not at fault
            log.warning(
                "TransactionEvent repeats a seqNo with different content",
                extra={"station_id": conn.station_id, "transaction_id": event.station_tx_id, "seq_no": event.seq_no},
            )
        return {"idTokenInfo": info} if info else {}

    async def _meter_values(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        await self._ledger.meter_values(
            fence,
            connector_id=0,
            transaction_id=None,
            received_at=now(),
            samples=inputs.samples(p["meterValue"]),
            evse_id=p["evseId"],
        )
        return {}

    async def _notify_report(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        if self._record_report is not None:
            await self._record_report(fence, conn.station_id, p)
        return {}

    def _keeper(self, action: str) -> Handler:
        """A report kept as sent (a retry adds nothing), then tied to the job or reservation it is about."""
        field = _KEPT_REPORTS[action]
        answer = _REPORT_ANSWERS.get(action, {})

        async def keep(conn: StationConnection, fence: Fence, p: Payload) -> Payload:
            summary = str(p[field]) if field and field in p else None
            station = conn.station_id
            parts = event(station, action, summary, p, now())  # and what it closes, in the same write
            if action == "FirmwareStatusNotification":
                parts += job_status(station, "firmware", p["status"], p.get("requestId"))
            elif action == "LogStatusNotification":
                parts += job_status(station, "log", p["status"], p.get("requestId"))
            elif action == "SecurityEventNotification":  # also in the security event log, beside 1.6's
                occurred = parse(p["timestamp"], "timestamp")
                parts += security_event(station, p["type"], p.get("techInfo"), occurred, now())
            elif action == "ReservationStatusUpdate":
                parts += reservation_status(station, p["reservationId"], p["reservationUpdateStatus"])
            await self._db.write_statements(parts, fence=fence)
            return dict(answer)

        return keep

    async def _data_transfer(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        answer = "UnknownVendorId"  # no vendor extensions are registered; the exchange is still recorded
        data = p.get("data")
        await self._registry.record_data_transfer(
            fence,
            vendor_id=p["vendorId"],
            message_id=p.get("messageId"),
            data=data if data is None or isinstance(data, str) else orjson.dumps(data).decode(),
            answered=answer,
            received_at=now(),
        )
        return {"status": answer}

    async def _sign_certificate(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        await self._registry.record_event(fence, "SignCertificate", p.get("certificateType"), p, now())
        if self.certificates is None or p.get("certificateType", STATION_CERTIFICATE) != STATION_CERTIFICATE:
            return {"status": "Rejected", "statusInfo": NOT_CONFIGURED}  # V2G certificates: no CA for those
        status = await self.certificates.sign_certificate(conn.station_id, p["csr"])
        if status == "Rejected":
            return {"status": status, "statusInfo": INVALID_CSR}
        return {"status": status}

    async def _get_15118_ev_certificate(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        await self._registry.record_event(fence, "Get15118EVCertificate", p.get("action"), p, now())
        return {"status": "Failed", "exiResponse": "", "statusInfo": NOT_CONFIGURED}

    async def _get_certificate_status(self, conn: StationConnection, fence: Fence, p: Payload) -> Payload:
        return {"status": "Failed", "statusInfo": NOT_CONFIGURED}


__all__ = ["CentralSystem201", "ReportHook"]
