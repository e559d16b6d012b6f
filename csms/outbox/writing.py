"""How a domain module adds events to its own write: as a Statement beside its other statements, or from
inside a write op. Either way the event is inserted in the same transaction as the change (and so fenced and
group-committed with it): an event exists if and only if its change committed.

Event statements are bulk statements: the group-commit writer runs each kind once per batch over every write's
rows (one INSERT into the partitioned outbox per batch, not one per event), which keeps the outbox cheap on the
hot path.

A write whose message may be retried with the same content passes ``dedup_key``: the event is then inserted
only if the station has no event with that key yet (a retried StartTransaction or MeterValues changes nothing
and so emits nothing), in the table or earlier in the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from csms.outbox.catalogue import full_type
from csms.storage import Connection, Statement

_COLUMNS = "aggregatetype, aggregateid, type, station_id, payload, dedup_key"

_PLAIN = "SELECT r->>0, r->>1, r->>2, r->>3, r->4, r->>5, n FROM inputs"


def _insert(select_sql: str) -> str:
    # No sort and no window: rows are inserted (and take their seq) in input order. A key repeated within the
    # batch counts once, at its first row: the first rows per key are one InitPlan array, computed once.
    return f"""
    WITH inputs AS (SELECT r, n FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS i (r, n)),
    e ({_COLUMNS}, n) AS ({select_sql})
    INSERT INTO outbox ({_COLUMNS})
    SELECT {_COLUMNS} FROM e
    WHERE e.dedup_key IS NULL
       OR (e.n = ANY (ARRAY(SELECT min(f.n) FROM e AS f WHERE f.dedup_key IS NOT NULL
                            GROUP BY f.station_id, f.dedup_key))
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.station_id = e.station_id AND o.dedup_key = e.dedup_key))
    """


_INSERT = _insert(_PLAIN)


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

    def row(self) -> tuple[Any, ...]:
        return (
            self.aggregate_type,
            self.aggregate_id,
            full_type(self.name),
            self.station_id,
            self.data,
            self.dedup_key,
        )


def event_statement(event: Event) -> Statement:
    """The event as a Statement: append it to the write's statements (the writer merges it across a batch)."""
    return Statement(_INSERT, event.row(), bulk=True, independent=True)


async def emit(conn: Connection, *events: Event) -> None:
    """Insert events from inside a write op (``async def op(conn)``), in the op's transaction: one statement
    for any number of events."""
    if events:
        await conn.execute(_INSERT, [e.row() for e in events])


def derived_events(select_sql: str, *args: Any) -> Statement:
    """Events computed by the caller's own SELECT over its own tables (values known only inside the
    transaction, like the energy so far of a session). The SELECT reads its arguments from the relation
    ``inputs (r, n)``: ``r`` is the JSON array of ``args`` (``r->>0`` ...), one row per merged write, ``n`` its
    position in the batch. It yields aggregatetype, aggregateid, type, station_id, payload (jsonb), dedup_key
    (text, may be NULL) and n, in that order; the type must be a catalogued full type
    (``csms.transaction.updated.v1``). A row whose dedup_key the station already has is skipped."""
    return Statement(_insert(select_sql), args, bulk=True)
