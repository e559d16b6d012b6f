-- The transactional outbox (issue #13): one row per domain change, written in the change's own transaction.
-- Columns id, aggregatetype, aggregateid, type, payload follow Debezium's outbox event router, so a Debezium
-- Postgres connector streams this table to Kafka unchanged. Range-partitioned by day on occurred_at; the
-- leader creates partitions ahead and drops those every exporter has passed (csms/outbox/partitions.py).
--
-- Cursor: (txid, seq). seq is allocated at INSERT, not at COMMIT, so a reader ordering by seq alone could pass
-- a row whose transaction commits later with a lower seq. Readers only see rows whose transaction is older
-- than every transaction still running (txid < pg_snapshot_xmin): that set never grows behind a cursor.
CREATE SEQUENCE outbox_seq AS bigint;

CREATE TABLE outbox (
    seq            bigint NOT NULL DEFAULT nextval('outbox_seq'),
    txid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    aggregatetype  text NOT NULL,
    aggregateid    text NOT NULL,
    type           text NOT NULL,
    payload        jsonb NOT NULL,
    station_id     text,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    dedup_key      text,       -- a retried message (same content) adds no second event for the same change
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE outbox_seq OWNED BY outbox.seq;
CREATE INDEX outbox_cursor ON outbox (txid, seq);
CREATE INDEX outbox_dedup ON outbox (station_id, dedup_key) WHERE dedup_key IS NOT NULL;

-- Rows whose day has no partition yet (the leader was away): kept, never refused.
CREATE TABLE outbox_default PARTITION OF outbox DEFAULT;

DO $$
DECLARE day date;
BEGIN
    FOR i IN 0..2 LOOP
        day := current_date + i;
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF outbox FOR VALUES FROM (%L) TO (%L)',
                       'outbox_p' || to_char(day, 'YYYYMMDD'), day, day + 1);
    END LOOP;
END $$;

-- One durable cursor per sink; advanced only after the sink acknowledged.
CREATE TABLE export_cursors (
    sink        text PRIMARY KEY,
    txid        xid8 NOT NULL DEFAULT '0',
    seq         bigint NOT NULL DEFAULT 0,
    exported    bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Webhook deliveries that failed every attempt: visible in the API, replayable.
CREATE TABLE export_dead_letters (
    id           bigserial PRIMARY KEY,
    sink         text NOT NULL,
    event_id     uuid NOT NULL,
    event        jsonb NOT NULL,
    attempts     integer NOT NULL,
    last_error   text NOT NULL,
    failed_at    timestamptz NOT NULL DEFAULT now(),
    replay_requested boolean NOT NULL DEFAULT false,  -- an operator asked to resend it (API)
    replayed_at  timestamptz,
    UNIQUE (sink, event_id)
);
