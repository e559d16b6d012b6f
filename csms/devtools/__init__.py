"""Developer and test tooling: spawners for the real servers the CSMS needs (never imported by the app)."""

from csms.devtools.postgres import PostgresNotFound, PostgresServer

__all__ = ["PostgresNotFound", "PostgresServer"]
