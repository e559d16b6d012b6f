-- The migration ledger itself; the migrator bootstraps it through this file like any other migration.
CREATE TABLE IF NOT EXISTS schema_migrations (
    module     text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (module, version)
);
