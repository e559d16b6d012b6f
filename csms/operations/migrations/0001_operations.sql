-- The operations module's tables: what stations were told to do, and what they said about it.
CREATE TABLE reservations (
    station_id       text NOT NULL,
    reservation_id   integer NOT NULL,
    connector_id     integer NOT NULL,
    id_tag           text NOT NULL,
    parent_id_tag    text,
    expiry_date      timestamptz NOT NULL,
    status           text NOT NULL,   -- Active, Faulted, Occupied, Rejected, Unavailable, Cancelled, Used, Expired
    transaction_id   integer,
    command_id       bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, reservation_id)
);
CREATE INDEX reservations_active ON reservations (expiry_date) WHERE status = 'Active';

CREATE TABLE charging_profiles (
    station_id            text NOT NULL,
    charging_profile_id   integer NOT NULL,
    connector_id          integer NOT NULL,
    stack_level           integer NOT NULL,
    purpose               text NOT NULL,
    kind                  text NOT NULL,
    transaction_id        integer,
    profile               jsonb NOT NULL,
    command_id            bigint,
    installed_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, charging_profile_id)
);

CREATE TABLE composite_schedules (
    id              bigserial PRIMARY KEY,
    station_id      text NOT NULL,
    connector_id    integer NOT NULL,
    duration        integer NOT NULL,
    result          jsonb NOT NULL,
    command_id      bigint,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX composite_schedules_station ON composite_schedules (station_id, id DESC);

CREATE TABLE station_configuration (
    station_id      text NOT NULL,
    key             text NOT NULL,
    value           text,
    readonly        boolean,
    known           boolean NOT NULL DEFAULT true,  -- false: the station answered unknownKey
    reported_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, key)
);

CREATE TABLE connector_availability (
    station_id      text NOT NULL,
    connector_id    integer NOT NULL,
    availability    text NOT NULL,      -- Operative / Inoperative as last requested
    answer          text NOT NULL,      -- Accepted / Rejected / Scheduled
    requested_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, connector_id)
);

CREATE TABLE station_jobs (
    id              bigserial PRIMARY KEY,
    station_id      text NOT NULL,
    kind            text NOT NULL,      -- firmware or diagnostics
    location        text NOT NULL,
    file_name       text,
    status          text NOT NULL,      -- Requested, then the station's notification statuses
    command_id      bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX station_jobs_station ON station_jobs (station_id, kind, id DESC);

CREATE TABLE remote_starts (
    id              bigserial PRIMARY KEY,
    station_id      text NOT NULL,
    connector_id    integer,
    id_tag          text NOT NULL,
    command_id      bigint,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    transaction_id  integer
);
CREATE INDEX remote_starts_open ON remote_starts (station_id, id_tag) WHERE transaction_id IS NULL;

CREATE TABLE local_list_versions (
    station_id        text PRIMARY KEY,
    sent_version      integer,
    reported_version  integer,
    update_type       text,
    synced_at         timestamptz,
    reported_at       timestamptz
);
