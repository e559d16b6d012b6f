"""Storage errors: the only exception types domain modules need to know (asyncpg's never leak out)."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error raised by csms.storage."""


class DatabaseUnavailable(StorageError):
    """Postgres cannot be reached, stopped answering, or the Database is closed.

    For writes the outcome may be unknown (the connection can drop during COMMIT): callers must not
    acknowledge the station message, and rely on idempotent retries.
    """


class QueryError(StorageError):
    """Postgres rejected a statement; ``sqlstate`` is the SQLSTATE code (e.g. ``"42P01"``)."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class IntegrityError(QueryError):
    """A constraint was violated (SQLSTATE class 23: unique, foreign key, not null, check)."""


class ValueRejected(QueryError):
    """Postgres (or the driver, encoding the argument) refused a value (SQLSTATE class 22, data exception): an
    integer out of its column's range, a NUL character, text that is not UTF-8, a date out of range. The
    value came from the caller's data, so this is the sender's mistake, not an outage or a bug in the SQL."""


class FenceRejected(StorageError):
    """The write's fence token is not the station's current one: another node claimed the station since."""

    def __init__(self, station_id: str, token: int, current: int | None) -> None:
        super().__init__(f"fence {token} for station {station_id!r} is stale (current: {current})")
        self.station_id = station_id
        self.token = token
        self.current = current


class MigrationError(StorageError):
    """A migration source is malformed (bad file name, duplicate version) or a migration failed."""
