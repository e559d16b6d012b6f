"""The fleet as operators see it: where stations are connected, their state, and search over all of them.

Presence (which replica holds a station's connection, since when) is written from connection events in the
background, off the station's path; "connected" is presence on a replica that is alive now (a crashed replica
never writes its disconnects, so callers pass the live node ids from the coordinator). Every read is bounded:
pages, LIMITs and indexed filters, so a 100,000-station fleet answers as fast as a small one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import trio

from csms.outbox import Event, emit
from csms.storage import Connection, Database, StorageError, given

log = logging.getLogger(__name__)

STATES = ("connected", "offline", "charging", "faulted")
SORTS = {
    "id": "s.id",
    "vendor": "s.vendor",
    "model": "s.model",
    "firmware": "s.firmware_version",
    "last_seen": "s.last_seen_at",
    "owner": "p.node_id",
}

_CONNECTED = "(p.disconnected_at IS NULL AND p.node_id = ANY($1::text[]))"
# 1.6 reports Charging as a connector status; 2.0.1 as its transaction's chargingState (charging_tx).
_CHARGING_CONNECTOR = "(c.status = 'Charging' OR c.charging_tx IS NOT NULL)"
_CHARGING = f"EXISTS (SELECT 1 FROM connector_status c WHERE c.station_id = s.id AND {_CHARGING_CONNECTOR})"
_FAULTED = (
    "EXISTS (SELECT 1 FROM connector_status c WHERE c.station_id = s.id"
    " AND (c.status = 'Faulted' OR c.error_code <> 'NoError'))"
)
_STATE_SQL = {
    "connected": _CONNECTED,
    "offline": f"NOT coalesce({_CONNECTED}, false)",
    "charging": _CHARGING,
    "faulted": _FAULTED,
}


@dataclass(frozen=True)
class StationFilter:
    """The station list's query: every field optional; `q` is an id prefix."""

    q: str = ""
    state: str = ""
    owner: str = ""
    protocol: str = ""
    vendor: str = ""
    model: str = ""
    firmware: str = ""
    sort: str = "id"
    descending: bool = False


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _plain(row: Any) -> dict[str, Any]:
    return {key: _iso(row[key]) for key in row.keys()}  # noqa: SIM118 (asyncpg Record)


class FleetViews:
    def __init__(self, db: Database, *, facet_seconds: float = 60.0) -> None:
        self._db = db
        self._facet_seconds = facet_seconds
        self._facets: tuple[float, dict[str, list[str]]] | None = None

    async def search(
        self, f: StationFilter, live_nodes: list[str], *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of stations and whether another follows (no count(*): it would scan the fleet)."""
        args: list[Any] = [live_nodes]
        filters = (
            (f.q and _like_prefix(f.q), "s.id LIKE ${}"),
            (f.owner, "p.node_id = ${} AND p.disconnected_at IS NULL"),
            (f.protocol, "p.protocol = ${}"),
            (f.vendor, "s.vendor = ${}"),
            (f.model, "s.model = ${}"),
            (f.firmware, "s.firmware_version = ${}"),
        )
        where = [given(filters, args)]
        if f.state:
            where.append(_STATE_SQL[f.state])
        order = SORTS.get(f.sort, "s.id")
        direction = "DESC" if f.descending else "ASC"
        args += [limit + 1, offset]
        # Charging and faulted are looked up for the page's rows only: in the select list of the paged query they
        # would be evaluated for every row the OFFSET skips as well (30,000 index probes on page 300).
        rows = await self._db.fetch(
            f"""
            SELECT s.*, {_CHARGING} AS charging, {_FAULTED} AS faulted FROM (
                SELECT s.id, s.description, s.vendor, s.model, s.firmware_version, s.last_seen_at, s.last_boot_at,
                    p.node_id, p.protocol, p.connected_at, p.disconnected_at,
                    coalesce({_CONNECTED}, false) AS connected
                FROM stations s LEFT JOIN station_presence p ON p.station_id = s.id
                WHERE {" AND ".join(where)}
                ORDER BY {order} {direction} NULLS LAST, s.id {direction}
                LIMIT ${len(args) - 1} OFFSET ${len(args)}
            ) s
            ORDER BY {order.replace("p.", "s.")} {direction} NULLS LAST, s.id {direction}
            """,
            *args,
        )
        return [_plain(r) for r in rows[:limit]], len(rows) > limit

    async def counts(self, live_nodes: list[str]) -> dict[str, int]:
        row = await self._db.fetchrow(
            f"""
            SELECT count(*) AS total, count(*) FILTER (WHERE {_CONNECTED}) AS connected,
                (SELECT count(DISTINCT station_id) FROM connector_status c WHERE {_CHARGING_CONNECTOR}) AS charging,
                (SELECT count(DISTINCT station_id) FROM connector_status
                 WHERE status = 'Faulted' OR error_code <> 'NoError') AS faulted
            FROM stations s LEFT JOIN station_presence p ON p.station_id = s.id
            """,
            live_nodes,
        )
        assert row is not None
        counts = {key: int(row[key]) for key in ("total", "connected", "charging", "faulted")}
        counts["offline"] = counts["total"] - counts["connected"]
        return counts

    async def offline_longest(self, live_nodes: list[str], limit: int = 10) -> list[dict[str, Any]]:
        """Stations whose last connection ended longest ago (or whose replica died with it)."""
        rows = await self._db.fetch(
            """
            SELECT station_id, node_id, coalesce(disconnected_at, connected_at) AS offline_since, close_reason
            FROM station_presence
            WHERE disconnected_at IS NOT NULL OR NOT (node_id = ANY($1::text[]))
            ORDER BY offline_since LIMIT $2
            """,
            live_nodes,
            limit,
        )
        return [_plain(r) for r in rows]

    async def recent_faults(self, limit: int = 10) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            "SELECT station_id, connector_id, status, error_code, info, received_at FROM connector_status_history"
            " WHERE status = 'Faulted' OR error_code <> 'NoError' ORDER BY id DESC LIMIT $1",
            limit,
        )
        return [_plain(r) for r in rows]

    async def recent_notifications(self, limit: int = 10) -> list[dict[str, Any]]:
        """Firmware, diagnostics and security notifications, newest first."""
        rows = await self._db.fetch(
            "SELECT station_id, kind, status, received_at FROM station_notifications ORDER BY received_at DESC"
            " LIMIT $1",
            limit,
        )
        return [_plain(r) for r in rows]

    async def presence(self, station_id: str) -> dict[str, Any] | None:
        row = await self._db.fetchrow(
            "SELECT node_id, connection_id, protocol, connected_at, disconnected_at, close_reason"
            " FROM station_presence WHERE station_id = $1",
            station_id,
        )
        return _plain(row) if row else None

    async def connections(self, station_id: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            "SELECT node_id, protocol, connected_at, disconnected_at, close_reason FROM station_connections"
            " WHERE station_id = $1 ORDER BY id DESC LIMIT $2",
            station_id,
            limit,
        )
        return [_plain(r) for r in rows]

    async def moves(self, minutes: int = 60) -> list[dict[str, Any]]:
        """Per minute and replica: connections accepted, and how many came from another replica (moves and
        takeovers) — what an SRE watches during a rolling update."""
        rows = await self._db.fetch(
            """
            SELECT date_trunc('minute', connected_at) AS minute, node_id, count(*) AS connections,
                count(*) FILTER (WHERE previous_node_id <> node_id) AS moved_in
            FROM station_connections WHERE connected_at > now() - make_interval(mins => $1)
            GROUP BY 1, 2 ORDER BY 1, 2
            """,
            minutes,
        )
        return [_plain(r) for r in rows]

    async def facets(self) -> dict[str, list[str]]:
        """Distinct vendors, models, firmware versions and protocols for the filter menus (bounded; cached for
        a minute: three DISTINCT scans of the fleet per list page would cost more than the page itself)."""
        now = trio.current_time()
        if self._facets is None or self._facets[0] < now:
            self._facets = (now + self._facet_seconds, await self._read_facets())
        return self._facets[1]

    async def _read_facets(self) -> dict[str, list[str]]:

        async def read(conn: Connection) -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for name, sql in (
                ("vendor", "SELECT DISTINCT vendor AS v FROM stations WHERE vendor IS NOT NULL ORDER BY 1 LIMIT 200"),
                ("model", "SELECT DISTINCT model AS v FROM stations WHERE model IS NOT NULL ORDER BY 1 LIMIT 200"),
                (
                    "firmware",
                    "SELECT DISTINCT firmware_version AS v FROM stations WHERE firmware_version IS NOT NULL"
                    " ORDER BY 1 LIMIT 200",
                ),
                ("protocol", "SELECT DISTINCT protocol AS v FROM station_presence ORDER BY 1 LIMIT 20"),
            ):
                found[name] = [row["v"] for row in await conn.fetch(sql)]
            return found

        return await self._db.transaction(read)


class PresenceRecorder:
    """Writes connection events to ``station_presence``/``station_connections`` in the background.

    ``connected``/``disconnected`` never block (they are called from the station's task): events queue in memory
    (bounded) and one task writes them every ``interval`` in one transaction. A replica's late write cannot undo a
    newer connection elsewhere: presence only moves forward in connection time, a disconnect only ends its own
    connection.
    """

    def __init__(self, db: Database, node_id: str, *, interval: float = 0.2, max_pending: int = 100_000) -> None:
        self._db = db
        self._node_id = node_id
        self._interval = interval
        self._max_pending = max_pending
        self._opened: list[tuple[str, str, str, str, datetime]] = []
        self._closed: list[tuple[str, str, str, datetime]] = []
        self._wakeup = trio.Event()

    def connected(self, station_id: str, connection_id: str, protocol: str) -> None:
        if self._room():
            self._opened.append((station_id, self._node_id, connection_id, protocol, datetime.now(UTC)))

    def disconnected(self, station_id: str, connection_id: str, reason: str) -> None:
        if self._room():
            self._closed.append((station_id, connection_id, reason, datetime.now(UTC)))

    def _room(self) -> bool:
        self._wakeup.set()
        return len(self._opened) + len(self._closed) < self._max_pending

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            await trio.sleep(self._interval)  # gather a burst (a reconnect storm) into one transaction
            opened, closed = self._opened, self._closed
            self._opened, self._closed = [], []
            try:
                await self._db.transaction(partial(_write, opened=opened, closed=closed))
            except StorageError as exc:
                # Put them back (bounded by _room) and try again on the next event or round.
                self._opened, self._closed = opened + self._opened, closed + self._closed
                log.warning("presence not recorded; retrying", extra={"error": str(exc)})
                await trio.sleep(1.0)
                self._wakeup.set()


async def _write(
    conn: Connection,
    *,
    opened: list[tuple[str, str, str, str, datetime]],
    closed: list[tuple[str, str, str, datetime]],
) -> None:
    # Replicas write presence concurrently (one loses a station while another gains it): every transaction
    # locks the rows it touches in one order, station id, before any statement, or two batches holding each
    # other's rows deadlock. Sorting keeps each station's events in their order (the times only grow).
    opened = sorted(opened, key=lambda row: (row[0], row[4]))
    closed = sorted(closed, key=lambda row: (row[0], row[3]))
    touched = sorted({row[0] for row in opened} | {row[0] for row in closed})
    if touched:
        await conn.execute(
            "SELECT 1 FROM station_presence WHERE station_id = ANY($1::text[]) ORDER BY station_id FOR UPDATE",
            touched,
        )
    if opened:
        await conn.executemany(  # one by one: a reconnect in the same batch sees the connection before it
            "INSERT INTO station_connections (station_id, node_id, connection_id, protocol, connected_at,"
            " previous_node_id) VALUES ($1, $2, $3, $4, $5, (SELECT node_id FROM station_connections"
            " WHERE station_id = $1 ORDER BY id DESC LIMIT 1)) ON CONFLICT (connection_id) DO NOTHING",
            opened,
        )
        await conn.executemany(
            """
            INSERT INTO station_presence (station_id, node_id, connection_id, protocol, connected_at)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (station_id) DO UPDATE SET node_id = EXCLUDED.node_id,
                connection_id = EXCLUDED.connection_id, protocol = EXCLUDED.protocol,
                connected_at = EXCLUDED.connected_at, disconnected_at = NULL, close_reason = NULL
            WHERE station_presence.connected_at <= EXCLUDED.connected_at
            """,
            opened,
        )
    if closed:
        await conn.executemany(
            "UPDATE station_connections SET disconnected_at = $4, close_reason = $3"
            " WHERE connection_id = $2 AND station_id = $1",
            closed,
        )
        await conn.executemany(
            "UPDATE station_presence SET disconnected_at = $4, close_reason = $3"
            " WHERE station_id = $1 AND connection_id = $2",
            closed,
        )
    # Keyed by connection: a presence write retried after an unknown outcome adds no second event.
    await emit(
        conn,
        *(
            Event(
                "station.connected.v1",
                "station",
                station_id,
                station_id,
                {
                    "station_id": station_id,
                    "node_id": node_id,
                    "connection_id": connection_id,
                    "protocol": protocol,
                    "at": at.isoformat(),
                },
                dedup_key="connected:" + connection_id,
            )
            for station_id, node_id, connection_id, protocol, at in opened
        ),
        *(
            Event(
                "station.disconnected.v1",
                "station",
                station_id,
                station_id,
                {"station_id": station_id, "connection_id": connection_id, "reason": reason, "at": at.isoformat()},
                dedup_key="disconnected:" + connection_id,
            )
            for station_id, connection_id, reason, at in closed
        ),
    )
