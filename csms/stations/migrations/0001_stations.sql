-- The stations module's tables: registry, boot info, connector state and its history, notifications.
CREATE TABLE stations (
    id                 text PRIMARY KEY,
    password_hash      text,
    boot_status        text CHECK (boot_status IN ('Accepted', 'Pending', 'Rejected')),
    description        text NOT NULL DEFAULT '',
    auto_registered    boolean NOT NULL DEFAULT false,
    vendor             text,
    model              text,
    serial_number      text,
    firmware_version   text,
    iccid              text,
    imsi               text,
    meter_type         text,
    meter_serial       text,
    last_boot_status   text,
    last_boot_at       timestamptz,
    last_seen_at       timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE connector_status (
    station_id         text NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
    connector_id       integer NOT NULL,
    status             text NOT NULL,
    error_code         text NOT NULL,
    info               text,
    vendor_id          text,
    vendor_error_code  text,
    station_timestamp  timestamptz,
    received_at        timestamptz NOT NULL,
    PRIMARY KEY (station_id, connector_id)
);

CREATE TABLE connector_status_history (
    id                 bigserial PRIMARY KEY,
    station_id         text NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
    connector_id       integer NOT NULL,
    status             text NOT NULL,
    error_code         text NOT NULL,
    info               text,
    vendor_id          text,
    vendor_error_code  text,
    station_timestamp  timestamptz,
    received_at        timestamptz NOT NULL
);
CREATE INDEX connector_status_history_station ON connector_status_history (station_id, received_at);

CREATE TABLE station_notifications (
    id                 bigserial PRIMARY KEY,
    station_id         text NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
    kind               text NOT NULL,
    status             text NOT NULL,
    received_at        timestamptz NOT NULL
);
CREATE INDEX station_notifications_station ON station_notifications (station_id, received_at);

CREATE TABLE data_transfers (
    id                 bigserial PRIMARY KEY,
    station_id         text NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
    vendor_id          text NOT NULL,
    message_id         text,
    data               text,
    answered           text NOT NULL,
    received_at        timestamptz NOT NULL
);
