-- The transactions module's tables. transactionId comes from a sequence: unique across every replica.
CREATE SEQUENCE transaction_ids AS integer START 1;

CREATE TABLE transactions (
    id                   integer PRIMARY KEY DEFAULT nextval('transaction_ids'),
    station_id           text NOT NULL,
    connector_id         integer NOT NULL,
    id_tag               text NOT NULL,
    id_tag_status        text NOT NULL,
    reservation_id       integer,
    remote_started       boolean NOT NULL DEFAULT false,
    meter_start          bigint NOT NULL,
    start_timestamp      timestamptz NOT NULL,   -- as the station sent it
    start_received_at    timestamptz NOT NULL,   -- as we received it
    meter_stop           bigint,
    stop_timestamp       timestamptz,
    stop_received_at     timestamptz,
    stop_reason          text,
    stop_id_tag          text,
    energy_wh            bigint GENERATED ALWAYS AS (meter_stop - meter_start) STORED,
    -- A retried StartTransaction (new message id, same content) must map to the same row.
    CONSTRAINT transactions_start_once UNIQUE (station_id, connector_id, id_tag, start_timestamp, meter_start)
);
ALTER SEQUENCE transaction_ids OWNED BY transactions.id;
CREATE INDEX transactions_station ON transactions (station_id, start_timestamp DESC);
CREATE INDEX transactions_open ON transactions (station_id) WHERE stop_received_at IS NULL;
CREATE INDEX transactions_started ON transactions (start_received_at);

CREATE TABLE meter_values (
    id                   bigserial PRIMARY KEY,
    station_id           text NOT NULL,
    connector_id         integer NOT NULL,
    transaction_id       integer NOT NULL DEFAULT 0,  -- 0: not tied to a transaction
    station_timestamp    timestamptz NOT NULL,
    received_at          timestamptz NOT NULL,
    source               text NOT NULL,               -- MeterValues or StopTransaction
    measurand            text NOT NULL,
    phase                text NOT NULL,
    unit                 text NOT NULL,
    context              text NOT NULL,
    location             text NOT NULL,
    format               text NOT NULL,
    value                text NOT NULL,
    -- A retried or replayed MeterValues must not store the same sample twice.
    CONSTRAINT meter_values_once UNIQUE
        (station_id, connector_id, transaction_id, station_timestamp, measurand, phase, location, context)
);
CREATE INDEX meter_values_transaction ON meter_values (transaction_id) WHERE transaction_id <> 0;

-- StopTransaction for a transactionId we never issued: kept for investigation, never crashed on.
CREATE TABLE unknown_stops (
    id                   bigserial PRIMARY KEY,
    station_id           text NOT NULL,
    transaction_id       integer NOT NULL,
    id_tag               text,
    meter_stop           bigint NOT NULL,
    stop_timestamp       timestamptz NOT NULL,
    stop_reason          text,
    received_at          timestamptz NOT NULL,
    UNIQUE (station_id, transaction_id, stop_timestamp)
);
