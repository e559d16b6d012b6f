-- OCPP 2.0.1 operations in the same model as 1.6 (issue 10 item 5), expand only (docs/operations/upgrades.md).
-- Existing rows keep their meaning: a 1.6 target has no EVSE level (evse_id 0) and is its connector; a 2.0.1
-- target is an EVSE (connector_id 0) or the station (both 0). `protocol` says which version's fields a row has.
ALTER TABLE reservations
    ADD COLUMN protocol text NOT NULL DEFAULT 'ocpp1.6',
    ADD COLUMN evse_id integer NOT NULL DEFAULT 0,
    ADD COLUMN id_token_type text,      -- 2.0.1 idToken.type (id_tag holds idToken.idToken)
    ADD COLUMN connector_type text;     -- 2.0.1: a reservation may ask for a connector type rather than an EVSE

ALTER TABLE charging_profiles
    ADD COLUMN protocol text NOT NULL DEFAULT 'ocpp1.6',
    ADD COLUMN evse_id integer NOT NULL DEFAULT 0,
    ADD COLUMN station_tx_id text;      -- 2.0.1 TxProfile: the station's transactionId (1.6: transaction_id)

ALTER TABLE composite_schedules ADD COLUMN evse_id integer NOT NULL DEFAULT 0;

-- 2.0.1 availability: the station (0, 0), an EVSE (n, 0) or one of its connectors (n, m). Its own table, read
-- together with 1.6's connector_availability, whose key the previous release's upserts name (expand only).
CREATE TABLE evse_availability (
    station_id      text NOT NULL,
    evse_id         integer NOT NULL,
    connector_id    integer NOT NULL,
    availability    text NOT NULL,      -- Operative / Inoperative as last requested
    answer          text NOT NULL,      -- Accepted / Rejected / Scheduled
    requested_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, evse_id, connector_id)
);

-- 2.0.1 firmware and log jobs carry the CSMS's requestId, which the station's status notifications repeat.
ALTER TABLE station_jobs
    ADD COLUMN protocol text NOT NULL DEFAULT 'ocpp1.6',
    ADD COLUMN request_id integer;
CREATE INDEX station_jobs_request ON station_jobs (station_id, kind, request_id) WHERE request_id IS NOT NULL;

-- requestId / remoteStartId the server fills when an operator leaves them out: one sequence for the cluster,
-- so unique per station; it starts far above the small ids operators pick by hand.
CREATE SEQUENCE operation_request_ids AS integer START WITH 1000000 MINVALUE 1000000 MAXVALUE 2147483647 NO CYCLE;
