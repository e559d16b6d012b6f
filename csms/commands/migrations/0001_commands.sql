-- The commands module's audit trail: every operator-initiated OCPP call, its answer and who ran it.
CREATE TABLE commands (
    id                  bigserial PRIMARY KEY,
    station_id          text NOT NULL,
    action              text NOT NULL,
    payload             jsonb NOT NULL,
    status              text NOT NULL,      -- pending, completed, call_error, timeout, offline, unknown_outcome, failed
    result              jsonb,              -- the station's CallResult payload
    error               jsonb,              -- {code, description, details} of a CallError or our own failure
    requested_by        text NOT NULL,
    requested_at        timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    latency_ms          double precision,
    executed_by         text,               -- the node that held the station's connection
    attempts            integer NOT NULL DEFAULT 0,
    is_async            boolean NOT NULL DEFAULT false
);
CREATE INDEX commands_station ON commands (station_id, id DESC);
CREATE INDEX commands_pending ON commands (requested_at) WHERE status = 'pending';
