"""How a domain module adds events to its own write: as a Statement beside its other statements, or from
inside a write op. Either way the event is inserted in the same transaction as the change (and so fenced and
group-committed with it): an event exists if and only if its change committed.

A write whose message may be retried with the same content passes ``dedup_key``: the event is then inserted
only if the station has no event with that key yet (a retried StartTransaction or MeterValues changes nothing
and so emits nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from csms.outbox.catalogue import full_type
from csms.storage import Connection, Statement

_COLUMNS = "aggregatetype, aggregateid, type, station_id, payload, dedup_key"

_INSERT = f"""
INSERT INTO outbox ({_COLUMNS})
SELECT $1, $2, $3, $4, $5::jsonb, $6::text
WHERE $6::text IS NULL OR NOT EXISTS (SELECT 1 FROM outbox WHERE station_id = $4 AND dedup_key = $6::text)
"""


@dataclass(frozen=True, slots=True)
class Event:
    """One domain change. ``name`` is a catalogue type (``transaction.ended.v1``); the aggregate is the thing
    that changed (Debezium routes by aggregate type, keys by aggregate id)."""

    name: str
    aggregate_type: str
    aggregate_id: str
    station_id: str | None
    data: dict[str, Any]
    dedup_key: str | None = None


def event_statement(event: Event) -> Statement:
    """The event as a Statement: append it to the write's statements (the writer merges it across a batch)."""
    return Statement(
        _INSERT,
        (
            event.aggregate_type,
            event.aggregate_id,
            full_type(event.name),
            event.station_id,
            event.data,
            event.dedup_key,
        ),
    )


async def emit(conn: Connection, *events: Event) -> None:
    """Insert events from inside a write op (``async def op(conn)``), in the op's transaction."""
    if len(events) == 1:
        statement = event_statement(events[0])
        await conn.execute(statement.sql, *statement.args)
    elif events:
        await conn.executemany(_INSERT, [event_statement(e).args for e in events])


def derived_events(select_sql: str, *args: Any) -> Statement:
    """Events computed by the caller's own SELECT over its own tables (values known only inside the
    transaction, like the energy so far of a session). The SELECT yields the columns aggregatetype,
    aggregateid, type, station_id, payload (jsonb), dedup_key (text, may be NULL), in that order; the type
    must be a catalogued full type (``csms.transaction.updated.v1``). A row whose dedup_key the station already
    has is skipped."""
    return Statement(
        f"""
        INSERT INTO outbox ({_COLUMNS})
        SELECT e.* FROM ({select_sql}) AS e ({_COLUMNS})
        WHERE e.dedup_key IS NULL
           OR NOT EXISTS (SELECT 1 FROM outbox o WHERE o.station_id = e.station_id AND o.dedup_key = e.dedup_key)
        """,
        args,
    )
