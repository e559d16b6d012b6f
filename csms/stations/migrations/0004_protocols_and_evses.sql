-- OCPP 2.0.1 beside 1.6 (issue 10). Existing rows keep their meaning: a 1.6 station's connectors have no EVSE
-- level (evse_id 0), its boots no reason.

-- The subprotocol of the station's latest connection ("ocpp1.6" | "ocpp2.0.1"); NULL: never connected since.
ALTER TABLE stations
    ADD COLUMN IF NOT EXISTS protocol text,
    ADD COLUMN last_boot_reason text;

-- 2.0.1 numbers connectors per EVSE (EVSE 1 connector 1, EVSE 2 connector 1): the EVSE is part of the key.
ALTER TABLE connector_status ADD COLUMN evse_id integer NOT NULL DEFAULT 0;
ALTER TABLE connector_status DROP CONSTRAINT connector_status_pkey;
ALTER TABLE connector_status ADD PRIMARY KEY (station_id, evse_id, connector_id);
ALTER TABLE connector_status_history ADD COLUMN evse_id integer NOT NULL DEFAULT 0;

-- What 2.0.1 stations report beyond transactions (NotifyEvent, SecurityEventNotification, firmware and log
-- status, charging limits, ...): kept as sent, per station, where an operator looks (GET .../events).
-- `digest` makes a retried message (new message id, same content) a no-op.
CREATE TABLE station_events (
    id                 bigserial PRIMARY KEY,
    station_id         text NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
    action             text NOT NULL,
    summary            text,
    payload            jsonb NOT NULL,
    digest             text NOT NULL,
    received_at        timestamptz NOT NULL,
    CONSTRAINT station_events_once UNIQUE (station_id, action, digest)
);
CREATE INDEX station_events_station ON station_events (station_id, id DESC);
