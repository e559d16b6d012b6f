-- OCPP 2.0.1 remote starts: RequestStartTransaction carries a remoteStartId the CSMS chose, and the station's
-- TransactionEvent(Started) repeats it, so the link is by that id (1.6 had to guess by id tag and connector).
-- A row is written before the request is sent, so a station that starts at once still finds it.
CREATE TABLE remote_start_requests (
    id               bigserial PRIMARY KEY,
    station_id       text NOT NULL,
    remote_start_id  integer NOT NULL,
    id_token         text NOT NULL,
    id_token_type    text NOT NULL,
    evse_id          integer,
    command_id       bigint,
    status           text NOT NULL DEFAULT 'Requested',  -- then the station's answer: Accepted / Rejected
    transaction_id   text,          -- the station's transactionId: from its answer or the linking event
    requested_at     timestamptz NOT NULL DEFAULT now(),
    linked_at        timestamptz
);
CREATE INDEX remote_start_requests_by_id ON remote_start_requests (station_id, remote_start_id, id DESC);
