-- A TransactionEvent repeating a seqNo already kept, with different content, is not a retry: two different
-- events were sent under one number (firmware bug, a replayed queue, tampering). The first kept stays the one the
-- transaction is derived from (order-independence needs one answer); each different variant is kept here once
-- for investigation and flags the transaction (conflicting_events). Events kept before this migration have no
-- digest, so a repeat of one of them cannot be judged and is not flagged.
ALTER TABLE transaction_events ADD COLUMN content_digest text;

CREATE TABLE transaction_event_conflicts (
    station_id      text NOT NULL,
    station_tx_id   text NOT NULL,
    seq_no          integer NOT NULL,
    transaction_id  integer NOT NULL,
    content_digest  text NOT NULL,
    content         jsonb NOT NULL,
    received_at     timestamptz NOT NULL,
    PRIMARY KEY (station_id, station_tx_id, seq_no, content_digest)
);
CREATE INDEX transaction_event_conflicts_transaction ON transaction_event_conflicts (transaction_id);

-- Same view, one more flag.
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
           CASE WHEN t.missing_seq_nos > 0 AND t.stop_received_at IS NOT NULL THEN 'missing_events' END,
           CASE WHEN t.station_tx_id IS NOT NULL AND EXISTS (
               SELECT 1 FROM transaction_event_conflicts c WHERE c.transaction_id = t.id AND c.station_id = t.station_id
           ) THEN 'conflicting_events' END
       ], NULL) AS flags,
       (SELECT round(r.wh)::bigint FROM meter_readings r
         WHERE r.transaction_id = t.id AND r.transaction_id <> 0 AND r.station_id = t.station_id
           AND r.flag IS NULL AND r.wh IS NOT NULL
         ORDER BY r.station_timestamp DESC, r.id DESC LIMIT 1) AS last_meter_wh,
       t.protocol, t.station_tx_id, t.evse_id, t.id_token_type, t.charging_state, t.trigger_reason,
       t.remote_start_id, t.offline, t.event_count, t.missing_seq_nos
FROM transactions t;
