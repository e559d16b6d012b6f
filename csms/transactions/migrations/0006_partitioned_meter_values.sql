-- meter_values range-partitioned by month on station_timestamp (issue #13): old months are dropped (after an
-- optional Parquet archive) instead of deleted row by row, and inserts touch one month's indexes. The partition
-- key is station_timestamp because the dedup constraint (meter_values_once) already contains it, so it stays
-- exactly as it was. Rows of months without a partition (a station clock years off) go to meter_values_default.
--
-- Existing rows are copied into the new table inside this migration's transaction (all or nothing); views that
-- read meter_values are re-pointed to it, the change-feed trigger is recreated, the id sequence carries on.
ALTER TABLE meter_values RENAME TO meter_values_unpartitioned;
ALTER TABLE meter_values_unpartitioned RENAME CONSTRAINT meter_values_once TO meter_values_unpartitioned_once;
ALTER TABLE meter_values_unpartitioned RENAME CONSTRAINT meter_values_pkey TO meter_values_unpartitioned_pkey;
ALTER INDEX meter_values_transaction_time RENAME TO meter_values_unpartitioned_transaction_time;
DROP TRIGGER meter_values_notify ON meter_values_unpartitioned;

CREATE TABLE meter_values (
    id                      bigint NOT NULL DEFAULT nextval('meter_values_id_seq'),
    station_id              text NOT NULL,
    connector_id            integer NOT NULL,
    transaction_id          integer NOT NULL DEFAULT 0,
    station_timestamp       timestamptz NOT NULL,
    received_at             timestamptz NOT NULL,
    source                  text NOT NULL,
    measurand               text NOT NULL,
    phase                   text NOT NULL,
    unit                    text NOT NULL,
    context                 text NOT NULL,
    location                text NOT NULL,
    format                  text NOT NULL,
    value                   text NOT NULL,
    reported_transaction_id integer,
    evse_id                 integer NOT NULL DEFAULT 0,
    PRIMARY KEY (id, station_timestamp),
    CONSTRAINT meter_values_once UNIQUE
        (station_id, evse_id, connector_id, transaction_id, station_timestamp, measurand, phase, location, context)
) PARTITION BY RANGE (station_timestamp);
CREATE INDEX meter_values_transaction_time ON meter_values (transaction_id, station_timestamp, id)
    WHERE transaction_id <> 0;
CREATE TABLE meter_values_default PARTITION OF meter_values DEFAULT;

-- A partition for every month that has rows (within ten years back) up to two months ahead.
DO $$
DECLARE
    month date := greatest(
        date_trunc('month', coalesce((SELECT min(station_timestamp) FROM meter_values_unpartitioned), now())),
        date_trunc('month', now() - interval '10 years'))::date;
BEGIN
    WHILE month <= (date_trunc('month', now()) + interval '2 months')::date LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF meter_values FOR VALUES FROM (%L) TO (%L)',
                       'meter_values_p' || to_char(month, 'YYYYMM'), month::timestamptz,
                       (month + interval '1 month')::timestamptz);
        month := (month + interval '1 month')::date;
    END LOOP;
END $$;

INSERT INTO meter_values (id, station_id, connector_id, transaction_id, station_timestamp, received_at, source,
                          measurand, phase, unit, context, location, format, value, reported_transaction_id, evse_id)
SELECT id, station_id, connector_id, transaction_id, station_timestamp, received_at, source, measurand, phase,
       unit, context, location, format, value, reported_transaction_id, evse_id
FROM meter_values_unpartitioned;

ALTER SEQUENCE meter_values_id_seq OWNED BY meter_values.id;

-- Same definition as in 0004 (the latest); CREATE OR REPLACE binds it to the new table.
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

DROP TABLE meter_values_unpartitioned;

CREATE TRIGGER meter_values_notify AFTER INSERT ON meter_values
    FOR EACH ROW EXECUTE FUNCTION csms_notify_change('meter');
