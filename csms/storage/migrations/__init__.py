"""Storage's own schema: ``schema_migrations`` (the ledger) and ``station_fences`` (fence tokens)."""
