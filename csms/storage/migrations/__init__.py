"""Storage's own schema: ``schema_migrations`` (the ledger), ``station_fences`` (fence tokens) and
``fence_epochs`` (the order in which coordinator domains were first seen)."""
