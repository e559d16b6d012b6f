"""The device model's write side: NotifyReport parts (fenced, on the station's owner) and the Get/SetVariables
and report commands (unfenced, on whichever replica served the operator's request).

Every write is an upsert keyed by the variable's OCPP identity, so a retried part, a part that arrives at
another replica after a failover, and parts in any order all leave the same rows.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from csms.devicemodel import events
from csms.devicemodel.entries import UPSERT_VARIABLE, identity, now_iso, report_row, value_row
from csms.storage import Database, Fence, Statement

log = logging.getLogger(__name__)

Payload = dict[str, Any]
REPORT_ACTIONS = ("GetBaseReport", "GetReport")

# A part: its seqNo joins the report's (once: a retry adds nothing), tbc = false fixes the last seqNo.
_REPORT_PART = """
INSERT INTO device_model_reports AS r (station_id, request_id, seq_nos, last_seq_no, variables, generated_at)
VALUES ($1, $2, ARRAY[$3::integer], CASE WHEN $4 THEN NULL ELSE $3::integer END, $5, $6)
ON CONFLICT (station_id, request_id) DO UPDATE SET
    seq_nos = CASE WHEN $3 = ANY (r.seq_nos) THEN r.seq_nos ELSE r.seq_nos || $3::integer END,
    variables = r.variables + CASE WHEN $3 = ANY (r.seq_nos) THEN 0 ELSE EXCLUDED.variables END,
    last_seq_no = coalesce(EXCLUDED.last_seq_no, r.last_seq_no),
    generated_at = greatest(r.generated_at, EXCLUDED.generated_at),
    updated_at = now()
"""
# An operator's request (re)starts the tracking of its requestId; parts that come after it count.
_REPORT_REQUESTED = """
INSERT INTO device_model_reports AS r (station_id, request_id, action, command_id, request, requested_at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (station_id, request_id) DO UPDATE SET action = EXCLUDED.action, command_id = EXCLUDED.command_id,
    request = EXCLUDED.request, requested_at = now(), answer = NULL, seq_nos = '{}', last_seq_no = NULL,
    variables = 0, generated_at = NULL, updated_at = now()
"""
_REPORT_ANSWERED = (
    "UPDATE device_model_reports SET answer = $3, updated_at = now() WHERE station_id = $1 AND command_id = $2"
)


class DeviceModel:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record_report(self, fence: Fence, station_id: str, payload: Payload) -> None:
        """Store one NotifyReport part (the request dict: requestId, generatedAt, tbc, seqNo, reportData)
        before the station gets its CallResult; tied to the GetBaseReport/GetReport with its requestId."""
        request_id, at = payload["requestId"], now_iso()
        entries = payload.get("reportData", [])
        statements = [Statement(UPSERT_VARIABLE, report_row(station_id, request_id, entry, at)) for entry in entries]
        part = (station_id, request_id, payload["seqNo"], payload.get("tbc", False), len(entries))
        generated = _instant(payload["generatedAt"])
        statements.append(Statement(_REPORT_PART, (*part, generated)))
        statements.append(events.report_received(*part, generated))
        await self._db.write_statements(statements, fence=fence)

    async def command_requested(self, record: Payload) -> None:
        """A report request goes on record before it is sent, so its first part always finds it."""
        if record["protocol"] != "ocpp2.0.1" or record["action"] not in REPORT_ACTIONS:
            return
        p = record["payload"]
        args = (record["station_id"], p["requestId"], record["action"], record["id"], p)
        await self._safely(record, [Statement(_REPORT_REQUESTED, args)])

    async def command_completed(self, record: Payload) -> None:
        """What the station said about its variables: read values, accepted values, report answers."""
        if record["protocol"] != "ocpp2.0.1" or record["status"] != "completed":
            return
        station_id, action, result = record["station_id"], record["action"], record["result"] or {}
        at = now_iso()
        if action == "GetVariables":
            rows = [
                value_row(station_id, r, r["attributeValue"], "GetVariables", at)
                for r in result.get("getVariableResult", [])
                if r["attributeStatus"] == "Accepted" and "attributeValue" in r
            ]
        elif action == "SetVariables":
            rows = _accepted_values(station_id, record["payload"], result, at)
        elif action in REPORT_ACTIONS:
            args = (station_id, record["id"], result.get("status"))
            await self._safely(record, [Statement(_REPORT_ANSWERED, args)])
            return
        else:
            return
        if rows:
            statements = [Statement(UPSERT_VARIABLE, row) for row in rows]
            await self._safely(record, [*statements, events.variables_updated(station_id, action, rows)])

    async def _safely(self, record: Payload, statements: list[Statement]) -> None:
        # The command itself went through; a failed bookkeeping write must not turn it into an error.
        try:
            await self._db.write_statements(statements)
        except Exception:
            log.exception("recording a device-model command failed", extra={"command_id": record["id"]})


def _accepted_values(station_id: str, payload: Payload, result: Payload, at: str) -> list[tuple[Any, ...]]:
    """SetVariables: the value the operator sent, for each result the station accepted (or will apply at reboot)."""
    sent = {
        (identity(d["component"], d["variable"]), d.get("attributeType", "Actual")): d["attributeValue"]
        for d in payload["setVariableData"]
    }
    rows = []
    for r in result.get("setVariableResult", []):
        value = sent.get((identity(r["component"], r["variable"]), r.get("attributeType", "Actual")))
        if value is not None and r["attributeStatus"] in ("Accepted", "RebootRequired"):
            rows.append(
                value_row(
                    station_id, r, value, "SetVariables", at, reboot_required=r["attributeStatus"] == "RebootRequired"
                )
            )
    return rows


def _instant(raw: str) -> datetime:
    """A station's timestamp; one without an offset is taken as UTC (as everywhere in the CSMS)."""
    value = datetime.fromisoformat(raw)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
