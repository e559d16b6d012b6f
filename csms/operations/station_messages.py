"""What a station message changes in the operations tables, as write-op builders: parts of that message's one
unit of work (csms/storage/work.py), composed with the other modules' parts by the central system, never
written on their own. Both protocols share the rows (writes.py); 2.0.1 adds requestId and reservationId lookups.
"""

from __future__ import annotations

from csms.operations.remote_start import take_remote_start
from csms.storage import Connection, Statement, WriteOp, run_statements

REMOTE_START_WINDOW_SECONDS = 600  # a StartTransaction this long after RemoteStartTransaction still matches

_RESERVATION_USED = (
    "UPDATE reservations SET status = 'Used', transaction_id = $3, updated_at = now()"
    " WHERE station_id = $1 AND reservation_id = $2 AND status = 'Active'"
)
_RESERVATION_STATUS = (
    "UPDATE reservations SET status = $3, updated_at = now()"
    " WHERE station_id = $1 AND reservation_id = $2 AND status = 'Active'"
)
_JOB_STATUS = (
    "UPDATE station_jobs SET status = $3, updated_at = now() WHERE id = ("
    " SELECT id FROM station_jobs WHERE station_id = $1 AND kind = $2"
    " AND ($4::integer IS NULL OR request_id = $4) ORDER BY id DESC LIMIT 1)"
)
# A 1.6 remote start a StartTransaction may answer: same station and tag, the connector asked for (if any),
# not linked yet, requested within the window. Arguments: station id, id tag, connector id, window seconds.
_OPEN_REMOTE_START = """
    SELECT id FROM remote_starts WHERE station_id = $1 AND id_tag = $2 AND transaction_id IS NULL
      AND (connector_id IS NULL OR connector_id = $3) AND requested_at > now() - make_interval(secs => $4)
"""
REMOTE_START_PENDING = _OPEN_REMOTE_START + " LIMIT 1"
_REMOTE_START_MATCHED = f"""
    UPDATE remote_starts SET transaction_id = $5 WHERE id = ({_OPEN_REMOTE_START} ORDER BY id LIMIT 1)
    RETURNING id
"""


def reservation_used(station_id: str, reservation_id: int, transaction_id: int) -> list[Statement]:
    """A transaction (1.6 StartTransaction, 2.0.1 TransactionEvent) started on the reservation; a retried
    message changes nothing (only an Active reservation is used)."""
    return [Statement(_RESERVATION_USED, (station_id, reservation_id, transaction_id))]


def reservation_status(station_id: str, reservation_id: int, status: str) -> list[Statement]:
    """OCPP 2.0.1 ReservationStatusUpdate: the station ended a reservation (Expired, Removed)."""
    return [Statement(_RESERVATION_STATUS, (station_id, reservation_id, status))]


def job_status(station_id: str, kind: str, status: str, request_id: int | None = None) -> list[Statement]:
    """Tie a firmware/diagnostics/log status notification to its job: the one with the station's requestId
    (2.0.1), else the station's latest job of that kind (1.6, and 2.0.1 notifications without one)."""
    return [Statement(_JOB_STATUS, (station_id, kind, status, request_id))]


def transaction_started_op(
    station_id: str, *, connector_id: int, id_tag: str, reservation_id: int | None, transaction_id: int
) -> WriteOp[bool]:
    """Consume the reservation a StartTransaction names and match a pending remote start; True if remotely
    started."""

    async def op(conn: Connection) -> bool:
        if reservation_id is not None:
            await run_statements(conn, reservation_used(station_id, reservation_id, transaction_id))
        matched = await conn.fetchval(
            _REMOTE_START_MATCHED, station_id, id_tag, connector_id, REMOTE_START_WINDOW_SECONDS, transaction_id
        )
        return matched is not None

    return op


def remote_start_linked_op(station_id: str, remote_start_id: int, station_tx_id: str) -> WriteOp[bool]:
    """A 2.0.1 TransactionEvent named a remoteStartId: link the request to the station's transaction
    (idempotent: a retried event links the same request). True if the CSMS had asked for it."""

    async def op(conn: Connection) -> bool:
        return await take_remote_start(conn, station_id, remote_start_id, station_tx_id) is not None

    return op
