"""OCPP 1.6 StartTransaction and StopTransaction as mergeable statements (csms/storage/batch.py).

As ops, each ran three or four round trips one after another inside the write batch, and every merged write of
the batch waited behind them: at 19,000 stations a batch held 20-25 of them. As statements, the writer runs
each kind once per batch (a pipelined fetchmany, executemany or one bulk insert), so a batch of starts and stops
costs six round trips however many it holds. Both stay safe to repeat: a retry finds the first start's id and
emits nothing; a repeated stop is 'already-stopped'. An event is emitted only by the message whose change it
is: its row carries that message's receive time (a retry's differs), the trick 2.0.1's events use too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from csms.outbox import derived_events
from csms.storage import Statement
from csms.transactions import outbox_events
from csms.transactions.samples import SampledValue, samples_event

PROTOCOL = "ocpp1.6"

# Placeholder stops (the leader's Abandoned, an operator's close) that the station's own StopTransaction
# still replaces: its meterStop is the truth, the placeholder only an estimate.
PLACEHOLDER_STOPS = ("Abandoned", "ClosedByOperator")

# One row: the transaction's id, new or (a retry with the same start content) the first one's.
_START = """
WITH ins AS (
    INSERT INTO transactions (station_id, connector_id, id_tag, id_tag_status, reservation_id, remote_started,
                              meter_start, start_timestamp, start_received_at)
    VALUES ($1, $2, $3, $4, $5, false, $6, $7, $8)
    ON CONFLICT ON CONSTRAINT transactions_start_once DO NOTHING
    RETURNING id
)
SELECT coalesce((SELECT id FROM ins),
                (SELECT id FROM transactions WHERE station_id = $1 AND connector_id = $2 AND id_tag = $3
                 AND start_timestamp = $7 AND meter_start = $6 AND tx_key = '')) AS id
"""
# transaction.started.v1, if the row was inserted by this message. Arguments: station id, connector id, id tag,
# start timestamp, meterStart, received at, the event's data (without transaction_id).
_STARTED = """
SELECT 'transaction', t.id::text, 'csms.transaction.started.v1', t.station_id,
       (r->6) || jsonb_build_object('transaction_id', t.id), NULL::text, n
FROM inputs JOIN transactions t ON t.station_id = r->>0 AND t.connector_id = (r->>1)::integer
     AND t.id_tag = r->>2 AND t.start_timestamp = (r->>3)::timestamptz AND t.meter_start = (r->>4)::bigint
     AND t.tx_key = '' AND t.start_received_at = (r->>5)::timestamptz
"""
# One row: 'stopped', 'already-stopped' or 'unknown'. Only the sender's own transaction is touched; any other id
# is kept as the sender's unknown stop.
_STOP = """
WITH cur AS (SELECT 1 FROM transactions WHERE id = $1 AND station_id = $2),
upd AS (
    UPDATE transactions SET meter_stop = $3, stop_timestamp = $4, stop_received_at = $5, stop_reason = $6,
                            stop_id_tag = $7
    WHERE id = $1 AND station_id = $2 AND (stop_received_at IS NULL OR stop_reason = ANY($8::text[]))
    RETURNING 1
), unknown AS (
    INSERT INTO unknown_stops (station_id, transaction_id, id_tag, meter_stop, stop_timestamp, stop_reason,
                               received_at)
    SELECT $2, $1, $7, $3, $4, $6, $5 WHERE NOT EXISTS (SELECT 1 FROM cur)
    ON CONFLICT DO NOTHING
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM upd) THEN 'stopped'
            WHEN EXISTS (SELECT 1 FROM cur) THEN 'already-stopped'
            ELSE 'unknown' END AS outcome
"""
# transaction.ended.v1, if this message stopped it. Arguments: transaction id, station id, received at, the
# event's data (energy_wh is the row's: meterStop - meterStart).
_ENDED = """
SELECT 'transaction', t.id::text, 'csms.transaction.ended.v1', t.station_id,
       (r->3) || jsonb_build_object('transaction_id', t.id, 'energy_wh', t.meter_stop - t.meter_start), NULL::text, n
FROM inputs JOIN transactions t ON t.id = (r->>0)::integer AND t.station_id = r->>1
     AND t.stop_received_at = (r->>2)::timestamptz
"""
# A StopTransaction's transactionData, on the sender's own transaction's connector (none for an unknown one).
_STOP_SAMPLE = """
INSERT INTO meter_values (station_id, connector_id, transaction_id, reported_transaction_id, station_timestamp,
                          received_at, source, measurand, phase, unit, context, location, format, value, evse_id)
SELECT t.station_id, t.connector_id, t.id, NULL, $3, $4, 'StopTransaction', $5, $6, $7, $8, $9, $10, $11, 0
FROM transactions t WHERE t.id = $1 AND t.station_id = $2
ON CONFLICT ON CONSTRAINT meter_values_once DO NOTHING
"""
# meter_values.recorded.v1 for them. Arguments: transaction id, station id, the event's data, dedup key.
_STOP_SAMPLES_EVENT = """
SELECT 'station', t.station_id, 'csms.meter_values.recorded.v1', t.station_id,
       (r->2) || jsonb_build_object('connector_id', t.connector_id), r->>3, n
FROM inputs JOIN transactions t ON t.id = (r->>0)::integer AND t.station_id = r->>1
"""


def start_statements(
    station_id: str,
    *,
    connector_id: int,
    id_tag: str,
    id_tag_status: str,
    meter_start: int,
    timestamp: datetime,
    received_at: datetime,
    reservation_id: int | None = None,
) -> list[Statement]:
    """Record a start (the write's rows: [start], read by ``started_id``)."""
    started = outbox_events.started(
        station_id,
        0,
        connector_id=connector_id,
        id_token=id_tag,
        id_token_status=id_tag_status,
        meter_start=meter_start,
        started_at=timestamp,
        protocol=PROTOCOL,
    )
    key = (station_id, connector_id, id_tag)
    return [
        Statement(
            _START,
            (*key, id_tag_status, reservation_id, meter_start, timestamp, received_at),
            returns_row=True,
        ),
        derived_events(_STARTED, *key, timestamp, meter_start, received_at, _without_id(started.data)),
    ]


def started_id(rows: list[Any]) -> int:
    return int(rows[0]["id"])


def stop_statements(
    station_id: str,
    *,
    transaction_id: int,
    meter_stop: int,
    timestamp: datetime,
    received_at: datetime,
    reason: str,
    id_tag: str | None,
    samples: list[SampledValue],
) -> list[Statement]:
    """Close the sender's transaction once and keep its transactionData (the write's rows: [outcome], read by
    ``stop_outcome``: 'stopped', 'already-stopped' or 'unknown'). 'unknown' is any id that is not the sender's own
    (another station's included): kept as the sender's unknown stop, no other row touched. A placeholder stop is
    still replaced by the station's own, late as it is."""
    ended = outbox_events.ended(station_id, transaction_id, None, meter_stop, reason, timestamp, id_tag, PROTOCOL)
    statements = [
        Statement(
            _STOP,
            (transaction_id, station_id, meter_stop, timestamp, received_at, reason, id_tag, list(PLACEHOLDER_STOPS)),
            returns_row=True,
        ),
        derived_events(_ENDED, transaction_id, station_id, received_at, _without_id(ended.data)),
    ]
    for s in samples:
        reading = (s.timestamp, received_at, s.measurand, s.phase, s.unit, s.context, s.location, s.format, s.value)
        statements.append(Statement(_STOP_SAMPLE, (transaction_id, station_id, *reading)))
    if samples:
        # Keyed without the connector (the transaction's, unknown here): a retried stop still emits nothing.
        event = samples_event(station_id, -1, transaction_id, samples)
        data = {k: v for k, v in event.data.items() if k != "connector_id"}
        statements.append(derived_events(_STOP_SAMPLES_EVENT, transaction_id, station_id, data, event.dedup_key))
    return statements


def stop_outcome(rows: list[Any]) -> str:
    return str(rows[0]["outcome"])


def _without_id(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "transaction_id"}
