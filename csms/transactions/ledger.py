"""The transaction ledger: with the statement builders beside it (sessions_v16.py, transaction_events.py), the
only code that touches `transactions`, `meter_values` and `unknown_stops`.

Every write goes through the group-commit writer with the station's fence, so a replica that lost a station
can never write for it again, and every method is safe to repeat: stations retry with new message ids. Every
station write and read is scoped by the sending station: a transactionId that is not the sender's own never
touches another station's rows. Plausibility (flags, energy so far) is derived by the views of migration 0002.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from csms.outbox import derived_events, emit, event_statement
from csms.storage import Connection, Database, Fence, PartitionedTable, Statement, WriteOp, run_statements
from csms.transactions import outbox_events
from csms.transactions.samples import SampledValue, sample_statements, samples_event
from csms.transactions.transaction_events import (
    EventOutcome,
    TransactionEventInput,
    conflicts_of,
    event_statements,
    events_of,
    outcome_of,
)

MIGRATIONS = Path(__file__).parent / "migrations"
METER_VALUES = PartitionedTable("meter_values", "month")  # on station_timestamp (migration 0006)

_COLUMNS = """id, station_id, connector_id, id_tag, id_tag_status, reservation_id, remote_started, meter_start,
start_timestamp, start_received_at, meter_stop, stop_timestamp, stop_received_at, stop_reason, stop_id_tag,
energy_wh, flags, last_meter_wh, operator_closed_by, operator_close_reason, operator_closed_at, protocol,
station_tx_id, evse_id, id_token_type, charging_state, trigger_reason, remote_start_id, offline, event_count,
missing_seq_nos"""


def _transaction(row: Any) -> dict[str, Any]:
    """A transaction with what it implies (active, energy so far); how it reads as JSON is the API's business."""
    data = dict(row)
    data["active"] = data["stop_received_at"] is None
    last_wh = data.pop("last_meter_wh")
    if not data["active"]:
        data["energy_so_far_wh"] = data["energy_wh"]
    else:
        start = data["meter_start"]  # None: a 2.0.1 transaction without an energy reading yet
        data["energy_so_far_wh"] = last_wh - start if last_wh is not None and start is not None else None
    return data


# -- write-op builders: parts of one station message's unit of work (see csms/storage/work.py) ----------------


def remote_started(station_id: str, transaction_id: int) -> list[Statement]:
    """Mark the sender's transaction as answering a RemoteStartTransaction."""
    sql = "UPDATE transactions SET remote_started = true WHERE id = $1 AND station_id = $2"
    return [Statement(sql, (transaction_id, station_id))]


def transaction_event_op(fence: Fence, event: TransactionEventInput) -> WriteOp[EventOutcome]:
    """OCPP 2.0.1: keep a TransactionEvent once and re-derive its transaction, as a part of a composed op. On
    its own, ``event_statements`` is cheaper: the writer merges those of a whole batch (see transaction_events)."""
    statements = event_statements(fence.station_id, event)

    async def op(conn: Connection) -> EventOutcome:
        return outcome_of(await run_statements(conn, statements))

    return op


class TransactionLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def meter_values(
        self,
        fence: Fence,
        *,
        connector_id: int,
        transaction_id: int | None,
        received_at: datetime,
        samples: list[SampledValue],
        evse_id: int | None = None,
    ) -> None:
        """Store samples against the sender; late or implausible ones are kept, flagged, and left out of energy."""
        station_id = fence.station_id
        # Bulk statements: the writer inserts every MeterValues sample (and event) of a batch in one execution.
        statements = sample_statements(
            station_id, connector_id, transaction_id or 0, received_at, "MeterValues", samples, evse_id
        )
        if samples:
            statements.append(event_statement(samples_event(station_id, connector_id, transaction_id or 0, samples)))
            register = outbox_events.register_wh(samples) if transaction_id else None
            if register is not None:
                wh, at = register
                key = f"tu:{transaction_id}:{at.isoformat()}"
                statements.append(
                    derived_events(outbox_events.UPDATED, transaction_id, station_id, wh, at.isoformat(), key)
                )
        await self._db.write_statements(statements, fence=fence)

    async def get(self, transaction_id: int) -> dict[str, Any] | None:
        async def read(conn: Connection) -> tuple[Any, list[Any], dict[str, Any]]:
            row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM transaction_rows WHERE id = $1", transaction_id)
            if row is None:
                return None, [], {}
            samples = await conn.fetch(
                "SELECT connector_id, station_timestamp, received_at, source, measurand, phase, unit, context,"
                " location, format, value, flag FROM meter_readings"
                " WHERE transaction_id = $1 AND transaction_id <> 0 AND station_id = $2"
                " ORDER BY station_timestamp, id",
                transaction_id,
                row["station_id"],
            )
            events = {}
            if row["station_tx_id"]:  # 2.0.1: the events it is derived from, and any conflicting repeats
                events["events"] = await events_of(conn, row["station_id"], transaction_id)
                events["conflicting_events"] = await conflicts_of(conn, row["station_id"], transaction_id)
            return row, samples, events

        row, samples, events = await self._db.transaction(read)
        if row is None:
            return None
        data = {**_transaction(row), **events}
        data["meter_values"] = [dict(s) for s in samples]
        return data

    async def page(
        self,
        *,
        station_id: str | None = None,
        id_tag: str | None = None,
        active: bool | None = None,
        since: datetime | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first; page with `before_id` (the last id of the previous page)."""
        rows = await self._db.fetch(
            f"""
            SELECT {_COLUMNS} FROM transaction_rows
            WHERE ($1::text IS NULL OR station_id = $1)
              AND ($2::boolean IS NULL OR (stop_received_at IS NULL) = $2)
              AND ($3::timestamptz IS NULL OR start_timestamp >= $3)
              AND ($4::integer IS NULL OR id < $4)
              AND ($6::text IS NULL OR id_tag = $6)
            ORDER BY id DESC LIMIT $5
            """,
            station_id,
            active,
            since,
            before_id,
            limit,
            id_tag,
        )
        return [_transaction(row) for row in rows]

    async def open_transactions(self, station_id: str) -> list[dict[str, Any]]:
        """What a replica reclaiming a station carries on with."""
        return await self.page(station_id=station_id, active=True, limit=1000)

    async def stations_charging(self, station_ids: list[str]) -> set[str]:
        """Which of these stations have a transaction open (rebalancing leaves them be: some end a session on
        any disconnect)."""
        rows = await self._db.fetch(
            "SELECT DISTINCT station_id FROM transactions"
            " WHERE station_id = ANY($1::text[]) AND stop_received_at IS NULL",
            station_ids,
        )
        return {row["station_id"] for row in rows}

    async def close_abandoned(self, horizon_seconds: float) -> int:
        """Leader job: close transactions silent for longer than the horizon (no stop, no meter value).

        meterStop is the last plausible energy register reading, else meterStart; the stop reason 'Abandoned'
        is not an OCPP reason, so a StopTransaction that turns up later still replaces it.
        """

        async def op(conn: Connection) -> int:
            rows = await conn.fetch(
                """
                UPDATE transactions t SET stop_reason = 'Abandoned', stop_received_at = now(),
                    stop_timestamp = now(),
                    meter_stop = coalesce((SELECT v.last_meter_wh FROM transaction_rows v WHERE v.id = t.id),
                                          t.meter_start)
                WHERE t.stop_received_at IS NULL
                  AND t.start_received_at < now() - make_interval(secs => $1)
                  AND NOT EXISTS (SELECT 1 FROM meter_values m WHERE m.transaction_id = t.id
                                  AND m.transaction_id <> 0 AND m.station_id = t.station_id
                                  AND m.received_at > now() - make_interval(secs => $1))
                RETURNING t.id, t.station_id, t.meter_start, t.meter_stop, t.stop_timestamp
                """,
                horizon_seconds,
            )
            await emit(conn, *(outbox_events.ended_row(row, "Abandoned") for row in rows))
            return len(rows)

        return await self._db.transaction(op)

    async def close_by_operator(
        self, transaction_id: int, *, reason: str, meter_stop: int | None, requested_by: str
    ) -> tuple[str, int]:
        """An operator closes a stale open transaction: ('closed' | 'unknown' | 'already-closed' |
        'below-start', its meterStart). meterStop defaults to the last plausible reading, else meterStart.
        Who and why stay on the row even if the station's real StopTransaction later replaces the stop."""

        async def op(conn: Connection) -> tuple[str, int]:
            row = await conn.fetchrow(
                "SELECT meter_start, stop_received_at FROM transactions WHERE id = $1 FOR UPDATE", transaction_id
            )
            if row is None:
                return "unknown", 0
            if row["stop_received_at"] is not None:
                return "already-closed", row["meter_start"]
            if meter_stop is not None and row["meter_start"] is not None and meter_stop < row["meter_start"]:
                return "below-start", row["meter_start"]
            closed = await conn.fetchrow(
                """
                UPDATE transactions t SET stop_reason = 'ClosedByOperator', stop_received_at = now(),
                    stop_timestamp = now(), operator_closed_at = now(), operator_closed_by = $3,
                    operator_close_reason = $4,
                    meter_stop = coalesce($2, (SELECT v.last_meter_wh FROM transaction_rows v WHERE v.id = t.id),
                                          t.meter_start)
                WHERE t.id = $1
                RETURNING t.id, t.station_id, t.meter_start, t.meter_stop, t.stop_timestamp
                """,
                transaction_id,
                meter_stop,
                requested_by,
                reason,
            )
            await emit(conn, outbox_events.ended_row(closed, "ClosedByOperator"))
            return "closed", row["meter_start"]

        return await self._db.transaction(op)

    async def open_sessions(self, station_ids: list[str]) -> dict[str, list[tuple[int, int, str | None]]]:
        """Each station's open transactions, one per connector or EVSE (its newest), newest first, as (connector or
        EVSE, transaction id, the station's own 2.0.1 transactionId or None): what load management shares a site's
        budget among, one share per charging EVSE."""
        rows = await self._db.fetch(
            "SELECT * FROM (SELECT DISTINCT ON (station_id, COALESCE(evse_id, connector_id)) station_id,"
            " COALESCE(evse_id, connector_id) AS evse, id, station_tx_id"
            " FROM transactions WHERE station_id = ANY($1::text[]) AND stop_received_at IS NULL"
            " ORDER BY station_id, COALESCE(evse_id, connector_id), id DESC) open ORDER BY station_id, id DESC",
            station_ids,
        )
        found: dict[str, list[tuple[int, int, str | None]]] = {}
        for row in rows:
            found.setdefault(row["station_id"], []).append((row["evse"], row["id"], row["station_tx_id"]))
        return found

    async def recent_draw(self, station_ids: list[str], within_seconds: float) -> dict[str, list[dict[str, Any]]]:
        """The newest Current.Import / Power.Active.Import reading per phase of each station's open transaction,
        received within ``within_seconds``: a station's measured draw."""
        rows = await self._db.fetch(
            "SELECT DISTINCT ON (m.station_id, m.measurand, m.phase) m.station_id, m.measurand, m.phase, m.unit,"
            " m.value, m.received_at FROM transactions t"
            " JOIN meter_values m ON m.transaction_id = t.id AND m.station_id = t.station_id"
            " WHERE t.station_id = ANY($1::text[]) AND t.stop_received_at IS NULL AND m.transaction_id <> 0"
            " AND m.measurand IN ('Current.Import', 'Power.Active.Import') AND m.format = 'Raw'"
            " AND m.received_at > now() - make_interval(secs => $2)"
            " ORDER BY m.station_id, m.measurand, m.phase, m.station_timestamp DESC, m.id DESC",
            station_ids,
            within_seconds,
        )
        found: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            found.setdefault(row["station_id"], []).append(
                {k: row[k] for k in ("measurand", "phase", "unit", "value", "received_at")}
            )
        return found
