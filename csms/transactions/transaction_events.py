"""OCPP 2.0.1 TransactionEvents: kept once each, and the transaction row derived from all of them.

The station's transactionId (scoped by station) is the key; the first event of a transaction to arrive, of
whatever type, creates its row and internal id. Each new event is stored once per seqNo (a retry with a new
message id is a no-op) and the row is then recomputed from every event and reading kept so far, with ties broken
by value, never by arrival. So a retried event, an offline batch arriving late and out of order, and events
split across replicas (fenced, one owner at a time) all produce one transaction with the same fields and energy.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson

from csms.outbox import Event, emit
from csms.storage import Connection, Fence
from csms.transactions import outbox_events
from csms.transactions.samples import SampledValue, insert_samples

PROTOCOL = "ocpp2.0.1"


@dataclass(frozen=True)
class TransactionEventInput:
    """One TransactionEvent, protocol-neutral enough for any version that reports transactions as events."""

    station_tx_id: str
    seq_no: int
    event_type: str  # Started | Updated | Ended
    timestamp: datetime
    received_at: datetime
    trigger_reason: str
    offline: bool = False
    charging_state: str | None = None
    stopped_reason: str | None = None
    remote_start_id: int | None = None
    reservation_id: int | None = None
    id_token: str | None = None
    id_token_type: str | None = None
    id_token_status: str | None = None  # what we answered for the token
    evse_id: int | None = None
    connector_id: int | None = None
    samples: list[SampledValue] = field(default_factory=list)


@dataclass(frozen=True)
class EventOutcome:
    transaction_id: int  # the internal id the API lists
    new: bool  # False: a retry of an event already kept
    connector_id: int
    conflict: bool = False  # a seqNo already kept, with different content: kept apart, the transaction flagged
    evse_id: int | None = None
    charging: bool = False  # derived: active and chargingState Charging (what the fleet shows as charging)


_CREATE = """
INSERT INTO transactions (station_id, protocol, station_tx_id, connector_id, evse_id, start_timestamp,
                          start_received_at)
VALUES ($1, $2, $3, coalesce($4, 0), $5, $6, $7)
ON CONFLICT (station_id, station_tx_id) WHERE station_tx_id IS NOT NULL DO NOTHING
RETURNING id
"""
_FIND = "SELECT id FROM transactions WHERE station_id = $1 AND station_tx_id = $2"
_KEEP_EVENT = """
INSERT INTO transaction_events (station_id, station_tx_id, seq_no, transaction_id, event_type, station_timestamp,
    received_at, trigger_reason, offline, charging_state, stopped_reason, remote_start_id, reservation_id, id_token,
    id_token_type, id_token_status, evse_id, connector_id, content_digest)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
ON CONFLICT DO NOTHING
RETURNING seq_no
"""
_KEPT_DIGEST = """
SELECT content_digest FROM transaction_events WHERE station_id = $1 AND station_tx_id = $2 AND seq_no = $3
"""
_KEEP_CONFLICT = """
INSERT INTO transaction_event_conflicts (station_id, station_tx_id, seq_no, transaction_id, content_digest, content,
                                         received_at)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
ON CONFLICT DO NOTHING
"""
# The row from everything kept: first-by-seqNo for what a transaction starts with, last-by-seqNo for its
# current state, the Ended event for its stop. Energy: the Transaction.Begin / Transaction.End register
# readings, else the earliest / latest one (by station time, then value). Without an Ended event the stop
# fields are left alone, so an Abandoned or ClosedByOperator placeholder stays until the real end arrives.
_DERIVE = """
WITH e AS (
    SELECT count(*) AS n,
           max(seq_no) - min(seq_no) + 1 - count(*) AS missing,
           bool_or(event_type = 'Ended') AS ended,
           min(station_timestamp) FILTER (WHERE event_type = 'Started') AS started_at,
           min(station_timestamp) AS first_at,
           min(received_at) AS first_received,
           (array_agg(station_timestamp ORDER BY seq_no) FILTER (WHERE event_type = 'Ended'))[1] AS ended_at,
           (array_agg(received_at ORDER BY seq_no) FILTER (WHERE event_type = 'Ended'))[1] AS ended_received,
           (array_agg(coalesce(stopped_reason, 'Local') ORDER BY seq_no)
               FILTER (WHERE event_type = 'Ended'))[1] AS stopped_reason,
           (array_agg(id_token ORDER BY seq_no) FILTER (WHERE id_token IS NOT NULL))[1] AS id_token,
           (array_agg(id_token_type ORDER BY seq_no) FILTER (WHERE id_token IS NOT NULL))[1] AS id_token_type,
           (array_agg(id_token_status ORDER BY seq_no) FILTER (WHERE id_token IS NOT NULL))[1] AS id_token_status,
           (array_agg(id_token ORDER BY seq_no)
               FILTER (WHERE event_type = 'Ended' AND id_token IS NOT NULL))[1] AS stop_id_token,
           (array_agg(evse_id ORDER BY seq_no) FILTER (WHERE evse_id IS NOT NULL))[1] AS evse_id,
           (array_agg(connector_id ORDER BY seq_no) FILTER (WHERE connector_id IS NOT NULL))[1] AS connector_id,
           (array_agg(charging_state ORDER BY seq_no DESC) FILTER (WHERE charging_state IS NOT NULL))[1]
               AS charging_state,
           (array_agg(trigger_reason ORDER BY seq_no DESC))[1] AS trigger_reason,
           (array_agg(remote_start_id ORDER BY seq_no) FILTER (WHERE remote_start_id IS NOT NULL))[1]
               AS remote_start_id,
           (array_agg(reservation_id ORDER BY seq_no) FILTER (WHERE reservation_id IS NOT NULL))[1]
               AS reservation_id,
           bool_or(offline) AS offline
    FROM transaction_events WHERE station_id = $1 AND station_tx_id = $2
), r AS (
    SELECT round(meter_wh(measurand, unit, format, value))::bigint AS wh, context, station_timestamp
    FROM meter_values
    WHERE transaction_id = $3 AND transaction_id <> 0 AND station_id = $1
      AND meter_wh(measurand, unit, format, value) IS NOT NULL
), m AS (
    SELECT coalesce((SELECT wh FROM r WHERE context = 'Transaction.Begin' ORDER BY station_timestamp, wh LIMIT 1),
                    (SELECT wh FROM r ORDER BY station_timestamp, wh LIMIT 1)) AS first_wh,
           coalesce((SELECT wh FROM r WHERE context = 'Transaction.End'
                     ORDER BY station_timestamp DESC, wh DESC LIMIT 1),
                    (SELECT wh FROM r ORDER BY station_timestamp DESC, wh DESC LIMIT 1)) AS last_wh
)
UPDATE transactions t SET
    connector_id = coalesce(e.connector_id, 0),
    evse_id = e.evse_id,
    start_timestamp = coalesce(e.started_at, e.first_at),
    start_received_at = e.first_received,
    id_tag = e.id_token,
    id_token_type = e.id_token_type,
    id_tag_status = e.id_token_status,
    reservation_id = e.reservation_id,
    remote_start_id = e.remote_start_id,
    remote_started = t.remote_started OR e.remote_start_id IS NOT NULL,
    meter_start = m.first_wh,
    charging_state = e.charging_state,
    trigger_reason = e.trigger_reason,
    offline = e.offline,
    event_count = e.n,
    missing_seq_nos = e.missing,
    meter_stop = CASE WHEN e.ended THEN coalesce(m.last_wh, m.first_wh) ELSE t.meter_stop END,
    stop_timestamp = CASE WHEN e.ended THEN e.ended_at ELSE t.stop_timestamp END,
    stop_received_at = CASE WHEN e.ended THEN e.ended_received ELSE t.stop_received_at END,
    stop_reason = CASE WHEN e.ended THEN e.stopped_reason ELSE t.stop_reason END,
    stop_id_tag = CASE WHEN e.ended THEN e.stop_id_token ELSE t.stop_id_tag END
FROM e, m
WHERE t.id = $3
RETURNING t.connector_id, t.evse_id, coalesce(t.charging_state = 'Charging' AND t.stop_received_at IS NULL, false)
    AS charging, t.meter_start, t.meter_stop, t.id_tag, t.id_tag_status, t.stop_reason, t.stop_timestamp,
    t.start_timestamp, t.charging_state, m.last_wh
"""


def content_of(ev: TransactionEventInput) -> bytes:
    """What the station said, as canonical JSON: everything but our receive time and our answer for the token
    (a retry may arrive later, and the token's status may have changed meanwhile)."""
    content = asdict(ev)
    del content["received_at"], content["id_token_status"]
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


async def record_event(conn: Connection, fence: Fence, ev: TransactionEventInput) -> EventOutcome:
    """A write op (runs inside the writer's batch transaction, fenced by the caller)."""
    station_id = fence.station_id
    content = content_of(ev)
    digest = hashlib.sha256(content).hexdigest()
    tx_id = await conn.fetchval(
        _CREATE, station_id, PROTOCOL, ev.station_tx_id, ev.connector_id, ev.evse_id, ev.timestamp, ev.received_at
    )
    created = tx_id is not None
    if tx_id is None:
        tx_id = await conn.fetchval(_FIND, station_id, ev.station_tx_id)
    kept = await conn.fetchval(
        _KEEP_EVENT,
        station_id,
        ev.station_tx_id,
        ev.seq_no,
        tx_id,
        ev.event_type,
        ev.timestamp,
        ev.received_at,
        ev.trigger_reason,
        ev.offline,
        ev.charging_state,
        ev.stopped_reason,
        ev.remote_start_id,
        ev.reservation_id,
        ev.id_token,
        ev.id_token_type,
        ev.id_token_status,
        ev.evse_id,
        ev.connector_id,
        digest,
    )
    if kept is None:
        kept_digest = await conn.fetchval(_KEPT_DIGEST, station_id, ev.station_tx_id, ev.seq_no)
        conflict = kept_digest is not None and kept_digest != digest
        if conflict:
            args = (station_id, ev.station_tx_id, ev.seq_no, tx_id, digest, content.decode(), ev.received_at)
            await conn.execute(_KEEP_CONFLICT, *args)
        connector = await conn.fetchval("SELECT connector_id FROM transactions WHERE id = $1", tx_id)
        return EventOutcome(int(tx_id), False, int(connector), conflict)
    await insert_samples(
        conn, station_id, ev.connector_id or 0, int(tx_id), ev.received_at, "TransactionEvent", ev.samples, ev.evse_id
    )
    row = await conn.fetchrow(_DERIVE, station_id, ev.station_tx_id, tx_id)
    await emit(conn, *_domain_events(station_id, int(tx_id), created, ev, row))
    return EventOutcome(int(tx_id), True, int(row["connector_id"]), evse_id=row["evse_id"], charging=row["charging"])


def _domain_events(station_id: str, tx_id: int, created: bool, ev: TransactionEventInput, row: Any) -> list[Event]:
    """The same catalogue events a 1.6 session emits, from the transaction as derived after this event."""
    events = []
    if created:
        events.append(
            outbox_events.started(
                station_id,
                tx_id,
                connector_id=row["connector_id"],
                id_token=row["id_tag"],
                id_token_status=row["id_tag_status"],
                meter_start=row["meter_start"],
                started_at=row["start_timestamp"],
                protocol=PROTOCOL,
            )
        )
    if ev.event_type == "Ended":
        reason = row["stop_reason"] or "Local"
        events.append(
            outbox_events.ended(
                station_id,
                tx_id,
                row["meter_start"],
                row["meter_stop"],
                reason,
                row["stop_timestamp"],
                row["id_tag"],
                PROTOCOL,
            )
        )
    elif not created:
        last, start = row["last_wh"], row["meter_start"]
        events.append(
            outbox_events.transaction_event(
                "transaction.updated.v1",
                station_id,
                tx_id,
                meter_wh=last,
                energy_so_far_wh=last - start if last is not None and start is not None else None,
                at=ev.timestamp.isoformat(),
                charging_state=row["charging_state"],
            )
        )
    return events


_EVENT_COLUMNS = """seq_no, event_type, station_timestamp, received_at, trigger_reason, offline, charging_state,
stopped_reason, remote_start_id, reservation_id, id_token, id_token_type, id_token_status, evse_id, connector_id"""


async def conflicts_of(conn: Connection, station_id: str, transaction_id: int) -> list[dict[str, Any]]:
    """The variants of already-kept seqNos, oldest first (bounded: a station repeating itself forever)."""
    rows = await conn.fetch(
        "SELECT seq_no, received_at, content FROM transaction_event_conflicts"
        " WHERE transaction_id = $1 AND station_id = $2 ORDER BY received_at, seq_no LIMIT 100",
        transaction_id,
        station_id,
    )
    return [
        {"seq_no": r["seq_no"], "received_at": r["received_at"], "content": orjson.loads(r["content"])} for r in rows
    ]


async def events_of(conn: Connection, station_id: str, transaction_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_EVENT_COLUMNS} FROM transaction_events WHERE transaction_id = $1 AND station_id = $2"
        " ORDER BY seq_no",
        transaction_id,
        station_id,
    )
    return [dict(r) for r in rows]
