-- Integrity of what stations report (issue 9): a reading is tied to a transaction only if the transaction is
-- the sender's own, and whether a reading is plausible is derived in one view (meter_readings), so a
-- StopTransaction that arrives after queued readings re-judges them without rewriting any row.

-- The transactionId a station named when it was not one of its own (the row then has transaction_id 0).
ALTER TABLE meter_values ADD COLUMN reported_transaction_id integer;

-- An operator's close of a stale transaction (POST /api/v1/transactions/{id}/close): who, why and when. Kept
-- even if the station's real StopTransaction turns up later and replaces the placeholder stop.
ALTER TABLE transactions
    ADD COLUMN operator_closed_by text,
    ADD COLUMN operator_close_reason text,
    ADD COLUMN operator_closed_at timestamptz;

-- OCPP 1.6 StopTransaction.req: an absent reason means Local.
UPDATE transactions SET stop_reason = 'Local' WHERE stop_reason IS NULL AND stop_received_at IS NOT NULL;
UPDATE unknown_stops SET stop_reason = 'Local' WHERE stop_reason IS NULL;

CREATE INDEX transactions_id_tag ON transactions (id_tag, id DESC);
-- A transaction's readings in order; "its last plausible reading" (energy so far, the abandoned estimate)
-- walks it backwards and stops at the first. Queries repeat `transaction_id <> 0` so the planner may use it.
CREATE INDEX meter_values_transaction_time ON meter_values (transaction_id, station_timestamp, id)
    WHERE transaction_id <> 0;
DROP INDEX meter_values_transaction;

-- Wh of an energy register reading; NULL for anything else (other measurands, signed data, unparseable or
-- too large to be a meter: 15 integer digits of kWh still fit a bigint of Wh).
CREATE FUNCTION meter_wh(measurand text, unit text, format text, value text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN measurand = 'Energy.Active.Import.Register' AND format = 'Raw' AND unit IN ('Wh', 'kWh')
                 AND value ~ '^[0-9]{1,15}(\.[0-9]{1,9})?$'
            THEN value::numeric * CASE WHEN unit = 'kWh' THEN 1000 ELSE 1 END END
$$;

-- Every reading with `wh` and `flag`: NULL when plausible, else why it is kept but left out of energy.
-- Placeholder stops (Abandoned, ClosedByOperator) are not the station's: readings after them are not flagged.
CREATE VIEW meter_readings AS
SELECT m.id, m.station_id, m.connector_id, m.transaction_id, m.reported_transaction_id, m.station_timestamp,
       m.received_at, m.source, m.measurand, m.phase, m.unit, m.context, m.location, m.format, m.value,
       meter_wh(m.measurand, m.unit, m.format, m.value) AS wh,
       CASE
           WHEN m.reported_transaction_id IS NOT NULL THEN 'unknown_transaction'
           WHEN m.station_timestamp > m.received_at + interval '1 day' THEN 'future_timestamp'
           WHEN t.id IS NULL THEN NULL
           WHEN m.connector_id <> t.connector_id THEN 'connector_mismatch'
           WHEN meter_wh(m.measurand, m.unit, m.format, m.value) < t.meter_start THEN 'below_meter_start'
           WHEN m.source = 'MeterValues' AND t.stop_received_at IS NOT NULL
                AND t.stop_reason NOT IN ('Abandoned', 'ClosedByOperator')
                AND (m.station_timestamp > t.stop_timestamp
                     OR meter_wh(m.measurand, m.unit, m.format, m.value) > t.meter_stop) THEN 'after_stop'
       END AS flag
FROM meter_values m
LEFT JOIN transactions t ON t.id = m.transaction_id AND t.station_id = m.station_id AND m.transaction_id <> 0;

-- Every transaction with its `flags` (plausible-but-odd facts, kept and shown, never refused) and
-- `last_meter_wh`, the newest plausible energy register reading (energy so far; the abandoned estimate).
-- A meterStop below meterStart gives no energy rather than a negative one.
CREATE VIEW transaction_rows AS
SELECT t.id, t.station_id, t.connector_id, t.id_tag, t.id_tag_status, t.reservation_id, t.remote_started,
       t.meter_start, t.start_timestamp, t.start_received_at, t.meter_stop, t.stop_timestamp, t.stop_received_at,
       t.stop_reason, t.stop_id_tag, t.operator_closed_by, t.operator_close_reason, t.operator_closed_at,
       CASE WHEN t.meter_stop >= t.meter_start THEN t.energy_wh END AS energy_wh,
       array_remove(ARRAY[
           CASE WHEN t.start_timestamp > t.start_received_at + interval '1 day' THEN 'start_in_future' END,
           CASE WHEN t.stop_timestamp > t.stop_received_at + interval '1 day' THEN 'stop_in_future' END,
           CASE WHEN t.stop_timestamp < t.start_timestamp THEN 'stop_before_start' END,
           CASE WHEN t.meter_stop < t.meter_start THEN 'meter_stop_below_start' END
       ], NULL) AS flags,
       (SELECT round(r.wh)::bigint FROM meter_readings r
         WHERE r.transaction_id = t.id AND r.transaction_id <> 0 AND r.station_id = t.station_id
           AND r.flag IS NULL AND r.wh IS NOT NULL
         ORDER BY r.station_timestamp DESC, r.id DESC LIMIT 1) AS last_meter_wh
FROM transactions t;
