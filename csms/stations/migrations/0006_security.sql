-- Security profiles, password rotation, certificate revocation and security events (issue 11).
-- security_profile NULL keeps the old behaviour (1 with a password, else 0), so existing stations keep working.
ALTER TABLE stations
    ADD COLUMN security_profile smallint CHECK (security_profile BETWEEN 0 AND 3),
    ADD COLUMN pending_password_hash text,
    ADD COLUMN password_rotation text CHECK (password_rotation IN ('sent', 'accepted', 'rejected', 'completed')),
    ADD COLUMN password_rotated_at timestamptz;

-- Certificates a station may no longer use (deleted from its inventory), by SHA-256 fingerprint of the DER.
CREATE TABLE revoked_certificates (
    fingerprint        text PRIMARY KEY,
    station_id         text NOT NULL,
    serial_number      text NOT NULL,
    revoked_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_certificates_station ON revoked_certificates (station_id);

-- No foreign key on station_id: refused handshakes name unknown ids too, and the log outlives a deleted station.
CREATE TABLE security_events (
    id                 bigserial PRIMARY KEY,
    station_id         text,
    origin             text NOT NULL CHECK (origin IN ('station', 'csms')),
    type               text NOT NULL,
    tech_info          text,
    occurrences        integer NOT NULL DEFAULT 1,
    occurred_at        timestamptz NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX security_events_station ON security_events (station_id, id);

-- Certificate inventory per station (issued by the CSMS's CA or imported from an external CA), with expiry.
CREATE TABLE station_certificates (
    id                 bigserial PRIMARY KEY,
    station_id         text NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
    fingerprint        text NOT NULL UNIQUE,
    serial_number      text NOT NULL,
    subject            text NOT NULL,
    issuer             text NOT NULL,
    not_before         timestamptz NOT NULL,
    not_after          timestamptz NOT NULL,
    pem                text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX station_certificates_expiry ON station_certificates (not_after);
CREATE INDEX station_certificates_station ON station_certificates (station_id);

-- Certificate signing requests from stations (SignCertificate): signed by the built-in CA at once, or exported
-- to an external CA and completed by importing the signed certificate through the API.
CREATE TABLE certificate_requests (
    id                 bigserial PRIMARY KEY,
    station_id         text NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
    csr_pem            text NOT NULL,
    status             text NOT NULL CHECK (status IN ('pending', 'signed', 'delivered', 'failed')),
    certificate_pem    text,
    detail             text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX certificate_requests_pending ON certificate_requests (status, id);
