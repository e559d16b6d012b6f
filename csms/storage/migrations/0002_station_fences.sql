-- Fence tokens (etcd claim revisions) per station: writes commit only while their token is current.
CREATE TABLE station_fences (
    station_id text        PRIMARY KEY,
    fence      bigint      NOT NULL,
    node_id    text        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);
