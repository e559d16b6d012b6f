"""The transactional outbox: domain events written in the same transaction as their change, read back in
commit-safe order, exported to sinks (NATS JetStream, webhooks; Kafka through Debezium on the table itself).

Domain modules depend on this package (never on each other) to add events to their writes: ``event_statement``
beside their statements, ``emit(conn, ...)`` inside a write op, or ``derived_events`` for values computed in
the transaction. The outbox owns tables ``outbox``, ``export_cursors`` and ``export_dead_letters``.
"""

from pathlib import Path

from csms.outbox.catalogue import SCHEMAS, TYPES, full_type
from csms.outbox.exports import ExportStore
from csms.outbox.reading import START, BadCursor, Cursor, OutboxReader, cloud_event, event_types
from csms.outbox.retention import OUTBOX, expired_partitions
from csms.outbox.writing import Event, derived_events, emit, event_statement

MIGRATIONS = Path(__file__).parent / "migrations"

__all__ = [
    "MIGRATIONS",
    "OUTBOX",
    "SCHEMAS",
    "START",
    "TYPES",
    "BadCursor",
    "Cursor",
    "Event",
    "ExportStore",
    "OutboxReader",
    "cloud_event",
    "derived_events",
    "emit",
    "event_statement",
    "event_types",
    "expired_partitions",
    "full_type",
]
