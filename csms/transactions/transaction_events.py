"""OCPP 2.0.1 TransactionEvents: kept once each, and the transaction row derived from all of them.

The station's transactionId (scoped by station) is the key; the first event of a transaction to arrive, of
whatever type, creates its row and internal id. Each new event is stored once per seqNo (a retry with a new
message id is a no-op) and the row is then recomputed from every event and reading kept so far, with ties broken
by value, never by arrival. So a retried event, an offline batch arriving late and out of order, and events
split across replicas (fenced, one owner at a time) all produce one transaction with the same fields and energy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import orjson

from csms.outbox import derived_events
from csms.storage import Connection, Row, Statement
from csms.transactions.samples import SampledValue, samples_event

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


# A TransactionEvent is five mergeable statements (the writer runs each as one pipelined executemany or
# fetchmany, or one bulk execution, per batch, so a batch of events costs five round trips, not five per event),
# in this order: create the transaction row if this is its first event; keep the event (or, for a seqNo already
# kept with other content, the conflicting variant), answering whether it was new; keep its readings and their
# outbox event if the kept event is this one; re-derive the row, with its outbox events in the same statement.
# The transaction is always found by (station, station's transactionId).
_CREATE = """
INSERT INTO transactions (station_id, protocol, station_tx_id, connector_id, evse_id, start_timestamp,
                          start_received_at)
VALUES ($1, $2, $3, coalesce($4, 0), $5, $6, $7)
ON CONFLICT (station_id, station_tx_id) WHERE station_tx_id IS NOT NULL DO NOTHING
"""
# One row: new (this event was kept now) and conflict (its seqNo was kept before with other content).
_KEEP_EVENT = """
WITH tx AS (SELECT id FROM transactions WHERE station_id = $1 AND station_tx_id = $2),
kept AS (SELECT content_digest FROM transaction_events WHERE station_id = $1 AND station_tx_id = $2 AND seq_no = $3),
ins AS (
    INSERT INTO transaction_events (station_id, station_tx_id, seq_no, transaction_id, event_type,
        station_timestamp, received_at, trigger_reason, offline, charging_state, stopped_reason, remote_start_id,
        reservation_id, id_token, id_token_type, id_token_status, evse_id, connector_id, content_digest)
    SELECT $1, $2, $3, tx.id, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18 FROM tx
    ON CONFLICT DO NOTHING
    RETURNING 1
), variant AS (
    INSERT INTO transaction_event_conflicts (station_id, station_tx_id, seq_no, transaction_id, content_digest,
                                             content, received_at)
    SELECT $1, $2, $3, tx.id, $18, $19::jsonb, $6 FROM tx, kept WHERE kept.content_digest <> $18
    ON CONFLICT DO NOTHING
)
SELECT EXISTS (SELECT 1 FROM ins) AS new, EXISTS (SELECT 1 FROM kept WHERE content_digest <> $18) AS conflict
"""
# A reading of the event is kept only if the event kept under its seqNo is this one (a retry's readings are
# already there; a conflicting variant's are not the transaction's).
_KEEP_SAMPLE = """
INSERT INTO meter_values (station_id, connector_id, transaction_id, reported_transaction_id, station_timestamp,
                          received_at, source, measurand, phase, unit, context, location, format, value, evse_id)
SELECT $1, $4, e.transaction_id, NULL, $6, $7, 'TransactionEvent', $8, $9, $10, $11, $12, $13, $14, $15
FROM transaction_events e
WHERE e.station_id = $1 AND e.station_tx_id = $2 AND e.seq_no = $3 AND e.content_digest = $5
ON CONFLICT ON CONSTRAINT meter_values_once DO NOTHING
"""
# The event's readings as meter_values.recorded.v1, if the event kept under its seqNo is this message's.
# Arguments: station id, station's transactionId, seqNo, received at, the event's data (without transaction_id).
_SAMPLES_EVENT = """
SELECT 'station', r->>0, 'csms.meter_values.recorded.v1', r->>0,
       (r->4) || jsonb_build_object('transaction_id', k.transaction_id), NULL::text, n
FROM inputs JOIN transaction_events k ON k.station_id = r->>0 AND k.station_tx_id = r->>1
     AND k.seq_no = (r->>2)::integer AND k.received_at = (r->>3)::timestamptz
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
), tx AS (
    SELECT id FROM transactions WHERE station_id = $1 AND station_tx_id = $2
), r AS (
    SELECT round(meter_wh(measurand, unit, format, value))::bigint AS wh, context, station_timestamp
    FROM meter_values
    WHERE transaction_id = (SELECT id FROM tx) AND transaction_id <> 0 AND station_id = $1
      AND meter_wh(measurand, unit, format, value) IS NOT NULL
), m AS (
    SELECT coalesce((SELECT wh FROM r WHERE context = 'Transaction.Begin' ORDER BY station_timestamp, wh LIMIT 1),
                    (SELECT wh FROM r ORDER BY station_timestamp, wh LIMIT 1)) AS first_wh,
           coalesce((SELECT wh FROM r WHERE context = 'Transaction.End'
                     ORDER BY station_timestamp DESC, wh DESC LIMIT 1),
                    (SELECT wh FROM r ORDER BY station_timestamp DESC, wh DESC LIMIT 1)) AS last_wh
), d AS (
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
FROM e, m, tx
WHERE t.id = tx.id
RETURNING t.*, m.last_wh, e.first_received
), events AS (
    -- Only for the message whose event was kept now (a retry's kept row has the first arrival's received_at):
    -- started if it was the transaction's first to arrive, then ended or updated (catalogue types, see
    -- csms/outbox). Same types and data as a 1.6 session's, in the derive's own statement and transaction.
    INSERT INTO outbox (aggregatetype, aggregateid, type, station_id, payload)
    SELECT 'transaction', d.id::text, 'csms.transaction.' || x.kind || '.v1', d.station_id,
           jsonb_build_object('transaction_id', d.id, 'station_id', d.station_id, 'protocol', $3::text) || x.data
    FROM d
    CROSS JOIN LATERAL (VALUES
        (1, 'started', d.first_received = $5::timestamptz, jsonb_build_object(
            'connector_id', d.connector_id, 'id_token', d.id_tag, 'id_token_status', d.id_tag_status,
            'meter_start_wh', d.meter_start, 'started_at', d.start_timestamp)),
        (2, 'ended', $4::text = 'Ended', jsonb_build_object(
            'meter_stop_wh', d.meter_stop, 'energy_wh', d.meter_stop - d.meter_start,
            'reason', coalesce(d.stop_reason, 'Local'), 'stopped_at', d.stop_timestamp, 'id_token', d.id_tag)),
        (3, 'updated', $4::text <> 'Ended' AND d.first_received <> $5::timestamptz, jsonb_build_object(
            'meter_wh', d.last_wh, 'energy_so_far_wh', d.last_wh - d.meter_start, 'at', $7::text,
            'charging_state', d.charging_state))
    ) AS x (k, kind, wanted, data)
    WHERE x.wanted AND EXISTS (
        SELECT 1 FROM transaction_events k
        WHERE k.station_id = $1 AND k.station_tx_id = $2 AND k.seq_no = $6 AND k.received_at = $5::timestamptz)
    ORDER BY x.k
)
SELECT id, connector_id, evse_id, coalesce(charging_state = 'Charging' AND stop_received_at IS NULL, false) AS charging
FROM d
"""


def content_of(ev: TransactionEventInput) -> bytes:
    """What the station said, as canonical JSON: everything but our receive time and our answer for the token
    (a retry may arrive later, and the token's status may have changed meanwhile)."""
    content = {name: getattr(ev, name) for name in _CONTENT_FIELDS}  # asdict's deep copy was 10% of the CPU
    content["samples"] = [{name: getattr(s, name) for name in _SAMPLE_FIELDS} for s in ev.samples]
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


_CONTENT_FIELDS = [f.name for f in fields(TransactionEventInput) if f.name not in ("received_at", "id_token_status")]
_SAMPLE_FIELDS = [f.name for f in fields(SampledValue)]


def event_statements(station_id: str, ev: TransactionEventInput) -> list[Statement]:
    """The statements that keep ``ev`` and re-derive its transaction (run in order, fenced by the caller);
    the write's rows are [keep, derive], read by ``outcome_of``."""
    content = content_of(ev)
    digest = hashlib.sha256(content).hexdigest()
    key = (station_id, ev.station_tx_id)
    keep = (
        *key,
        ev.seq_no,
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
        content.decode(),
    )
    statements = [
        Statement(
            _CREATE, (station_id, PROTOCOL, ev.station_tx_id, ev.connector_id, ev.evse_id, ev.timestamp, ev.received_at)
        ),
        Statement(_KEEP_EVENT, keep, returns_row=True),
    ]
    for v in ev.samples:
        reading = (v.timestamp, ev.received_at, v.measurand, v.phase, v.unit, v.context, v.location, v.format, v.value)
        args = (*key, ev.seq_no, ev.connector_id or 0, digest, *reading, ev.evse_id or 0)
        statements.append(Statement(_KEEP_SAMPLE, args))
    if ev.samples:
        data = samples_event(station_id, ev.connector_id or 0, 0, ev.samples).data
        statements.append(derived_events(_SAMPLES_EVENT, *key, ev.seq_no, ev.received_at, data))
    derive = (*key, PROTOCOL, ev.event_type, ev.received_at, ev.seq_no, ev.timestamp.isoformat())
    statements.append(Statement(_DERIVE, derive, returns_row=True))
    return statements


def outcome_of(rows: list[Row]) -> EventOutcome:
    keep, row = rows
    return EventOutcome(
        int(row["id"]),
        bool(keep["new"]),
        int(row["connector_id"]),
        bool(keep["conflict"]),
        evse_id=row["evse_id"],
        charging=row["charging"],
    )


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
