"""Postgres for the CSMS: asyncpg behind trio-asyncio, a group-commit writer, migrations and fencing.

The only package allowed to import asyncpg or trio_asyncio. Domain modules own their tables (migrations
in their own ``migrations`` package) and write through ``Database.write(op, fence=...)`` where ``op`` is
``async def op(conn: Connection) -> T``, or, cheaper on the hot path, ``Database.write_statements([Statement(sql,
args), ...], fence=...)``, whose statements the writer merges across a batch. One station message is one
unit of work (one write call): modules expose write-op builders, the caller composes them (``work.py``).
"""

from csms.storage.archive import archive_partition
from csms.storage.coalesce import Coalescer, CoalescerClosed
from csms.storage.database import Database
from csms.storage.errors import (
    DatabaseUnavailable,
    FenceRejected,
    IntegrityError,
    MigrationError,
    QueryError,
    StorageError,
    ValueRejected,
)
from csms.storage.filters import given
from csms.storage.migrator import MigrationDir
from csms.storage.observer import NullObserver, StorageObserver
from csms.storage.partitions import Partition, PartitionedTable
from csms.storage.types import Connection, Fence, Row, Statement, WriteOp
from csms.storage.work import SecondWrite, run_statements, unit_of_work

__all__ = [
    "Coalescer",
    "CoalescerClosed",
    "Connection",
    "Database",
    "DatabaseUnavailable",
    "Fence",
    "FenceRejected",
    "IntegrityError",
    "MigrationDir",
    "MigrationError",
    "NullObserver",
    "Partition",
    "PartitionedTable",
    "QueryError",
    "Row",
    "SecondWrite",
    "Statement",
    "StorageError",
    "StorageObserver",
    "ValueRejected",
    "WriteOp",
    "archive_partition",
    "given",
    "run_statements",
    "unit_of_work",
]
