-- OCPP 2.0.1 transactions (issue 10) in the same table as 1.6 ones, so one API lists both with energy_wh.
-- A 2.0.1 transaction is keyed by the station's own transactionId (station_tx_id, scoped by station) and gets
-- an internal id from the same sequence. Its row is DERIVED from all of its TransactionEvents kept so far
-- (transaction_events), recomputed after each one: a retried event, events arriving late, out of order or at
-- another replica all lead to the same row. 1.6 rows keep every value; their new columns stay NULL/defaults.
ALTER TABLE transactions
    ADD COLUMN protocol text NOT NULL DEFAULT 'ocpp1.6',
    ADD COLUMN station_tx_id text,
    ADD COLUMN evse_id integer,
    ADD COLUMN id_token_type text,
    ADD COLUMN charging_state text,
    ADD COLUMN trigger_reason text,
    ADD COLUMN remote_start_id integer,
    ADD COLUMN offline boolean NOT NULL DEFAULT false,
    ADD COLUMN event_count integer,
    ADD COLUMN missing_seq_nos integer;
-- A 2.0.1 transaction may start without an idToken (cable plugged in) or without an energy reading.
ALTER TABLE transactions ALTER COLUMN id_tag DROP NOT NULL;
ALTER TABLE transactions ALTER COLUMN id_tag_status DROP NOT NULL;
ALTER TABLE transactions ALTER COLUMN meter_start DROP NOT NULL;
CREATE UNIQUE INDEX transactions_station_tx ON transactions (station_id, station_tx_id)
    WHERE station_tx_id IS NOT NULL;
-- 1.6's retry rule (same start content = same transaction) is 1.6's only: two 2.0.1 transactions are two
-- transactionIds, whatever their start looks like. Expand, never break: the previous release still inserts
-- with ON CONFLICT ON CONSTRAINT transactions_start_once during a rolling update, so the constraint keeps its
-- name and, for 1.6 rows (tx_key ''), its meaning; 2.0.1 rows differ by their station transactionId.
ALTER TABLE transactions ADD COLUMN tx_key text GENERATED ALWAYS AS (coalesce(station_tx_id, '')) STORED;
ALTER TABLE transactions DROP CONSTRAINT transactions_start_once;
ALTER TABLE transactions ADD CONSTRAINT transactions_start_once
    UNIQUE (station_id, connector_id, id_tag, start_timestamp, meter_start, tx_key);

-- Every TransactionEvent as received, once per (station, transactionId, seqNo): a retry is a no-op.
CREATE TABLE transaction_events (
    station_id          text NOT NULL,
    station_tx_id       text NOT NULL,
    seq_no              integer NOT NULL,
    transaction_id      integer NOT NULL,
    event_type          text NOT NULL,
    station_timestamp   timestamptz NOT NULL,
    received_at         timestamptz NOT NULL,
    trigger_reason      text NOT NULL,
    offline             boolean NOT NULL,
    charging_state      text,
    stopped_reason      text,
    remote_start_id     integer,
    reservation_id      integer,
    id_token            text,
    id_token_type       text,
    id_token_status     text,
    evse_id             integer,
    connector_id        integer,
    PRIMARY KEY (station_id, station_tx_id, seq_no)
);
CREATE INDEX transaction_events_transaction ON transaction_events (transaction_id);

-- 2.0.1 readings name an EVSE (0: none, as in 1.6); two EVSEs may report at the same instant.
ALTER TABLE meter_values ADD COLUMN evse_id integer NOT NULL DEFAULT 0;
ALTER TABLE meter_values DROP CONSTRAINT meter_values_once;
ALTER TABLE meter_values ADD CONSTRAINT meter_values_once UNIQUE
    (station_id, evse_id, connector_id, transaction_id, station_timestamp, measurand, phase, location, context);

-- Same view, one change: the connector check is 1.6's (2.0.1 readings name their EVSE; the connector may
-- only be given in a transaction's first event).
CREATE OR REPLACE VIEW meter_readings AS
SELECT m.id, m.station_id, m.connector_id, m.transaction_id, m.reported_transaction_id, m.station_timestamp,
       m.received_at, m.source, m.measurand, m.phase, m.unit, m.context, m.location, m.format, m.value,
       meter_wh(m.measurand, m.unit, m.format, m.value) AS wh,
       CASE
           WHEN m.reported_transaction_id IS NOT NULL THEN 'unknown_transaction'
           WHEN m.station_timestamp > m.received_at + interval '1 day' THEN 'future_timestamp'
           WHEN t.id IS NULL THEN NULL
           WHEN t.station_tx_id IS NULL AND m.connector_id <> t.connector_id THEN 'connector_mismatch'
           WHEN meter_wh(m.measurand, m.unit, m.format, m.value) < t.meter_start THEN 'below_meter_start'
           WHEN m.source = 'MeterValues' AND t.stop_received_at IS NOT NULL
                AND t.stop_reason NOT IN ('Abandoned', 'ClosedByOperator')
                AND (m.station_timestamp > t.stop_timestamp
                     OR meter_wh(m.measurand, m.unit, m.format, m.value) > t.meter_stop) THEN 'after_stop'
       END AS flag,
       m.evse_id
FROM meter_values m
LEFT JOIN transactions t ON t.id = m.transaction_id AND t.station_id = m.station_id AND m.transaction_id <> 0;

CREATE OR REPLACE VIEW transaction_rows AS
SELECT t.id, t.station_id, t.connector_id, t.id_tag, t.id_tag_status, t.reservation_id, t.remote_started,
       t.meter_start, t.start_timestamp, t.start_received_at, t.meter_stop, t.stop_timestamp, t.stop_received_at,
       t.stop_reason, t.stop_id_tag, t.operator_closed_by, t.operator_close_reason, t.operator_closed_at,
       CASE WHEN t.meter_stop >= t.meter_start THEN t.energy_wh END AS energy_wh,
       array_remove(ARRAY[
           CASE WHEN t.start_timestamp > t.start_received_at + interval '1 day' THEN 'start_in_future' END,
           CASE WHEN t.stop_timestamp > t.stop_received_at + interval '1 day' THEN 'stop_in_future' END,
           CASE WHEN t.stop_timestamp < t.start_timestamp THEN 'stop_before_start' END,
           CASE WHEN t.meter_stop < t.meter_start THEN 'meter_stop_below_start' END,
           CASE WHEN t.missing_seq_nos > 0 AND t.stop_received_at IS NOT NULL THEN 'missing_events' END
       ], NULL) AS flags,
       (SELECT round(r.wh)::bigint FROM meter_readings r
         WHERE r.transaction_id = t.id AND r.transaction_id <> 0 AND r.station_id = t.station_id
           AND r.flag IS NULL AND r.wh IS NOT NULL
         ORDER BY r.station_timestamp DESC, r.id DESC LIMIT 1) AS last_meter_wh,
       t.protocol, t.station_tx_id, t.evse_id, t.id_token_type, t.charging_state, t.trigger_reason,
       t.remote_start_id, t.offline, t.event_count, t.missing_seq_nos
FROM transactions t;
