-- Sites (issue 15): stations sharing one grid connection, their limits, and the allocations in force.

CREATE TABLE sites (
    id              text PRIMARY KEY,
    limit_value     double precision NOT NULL CHECK (limit_value > 0),   -- in `unit`; A is per phase
    unit            text NOT NULL CHECK (unit IN ('A', 'W')),
    voltage         double precision NOT NULL DEFAULT 230,              -- phase voltage, for W limits
    failsafe        double precision,                                   -- A per station; NULL: the fair split
    schedule        jsonb NOT NULL DEFAULT '[]',                        -- [{"from": "HH:MM", "limit": n}] (UTC)
    override_limit  double precision,                                   -- live override, until override_until
    override_until  timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- A station belongs to at most one site.
CREATE TABLE site_stations (
    station_id   text PRIMARY KEY,
    site_id      text NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    min_current  double precision NOT NULL,
    max_current  double precision NOT NULL,
    phases       smallint NOT NULL CHECK (phases IN (1, 2, 3)),
    priority     integer NOT NULL DEFAULT 0,
    CHECK (0 <= min_current AND min_current <= max_current)
);
CREATE INDEX site_stations_site ON site_stations (site_id);

-- What each station holds, as far as the site's computing replica knows: limits the station Accepted (in
-- force) and limits sent but not yet answered (pending: counted at the higher of the two after a failover).
-- `stuck`: a reduction the station did not accept; it is counted at its max_current until it does.
CREATE TABLE site_allocations (
    station_id       text PRIMARY KEY,
    site_id          text NOT NULL,
    default_limit    double precision,      -- TxDefaultProfile (the failsafe) in force, A
    default_pending  double precision,
    transaction_id   integer,               -- the transaction the TxProfile belongs to
    connector_id     integer,
    tx_limit         double precision,      -- TxProfile in force, A
    tx_pending       double precision,
    stuck            boolean NOT NULL DEFAULT false,
    measured         double precision,      -- last measured draw, A
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX site_allocations_site ON site_allocations (site_id);

-- The computing replica's last round, for the API and metrics of any replica.
CREATE TABLE site_rounds (
    site_id           text PRIMARY KEY,
    computed_by       text NOT NULL,
    computed_at       timestamptz NOT NULL,
    limit_now         double precision NOT NULL,   -- in the site's unit
    allocated         double precision NOT NULL,   -- in the site's unit, counted as the safety rules count
    measured          double precision NOT NULL,   -- in the site's unit
    charging          integer NOT NULL,
    capped            integer NOT NULL,
    reallocated_at    timestamptz
);

-- Changes reach the computing replica at once through the change feed (storage's channel).
CREATE FUNCTION sites_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('csms_changes', 'site ' || COALESCE(NEW.id, OLD.id));
    RETURN NULL;
END $$;
CREATE TRIGGER sites_notify AFTER INSERT OR UPDATE OR DELETE ON sites
    FOR EACH ROW EXECUTE FUNCTION sites_notify_change();
