"""The stations module's security tables: profiles, password rotation, revocations and the security event log.

Kept apart from the registry because the handshake reads it on every connect (one coalesced query per batch)
and because nothing here may ever return a password or a hash to the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from csms.outbox import Event, event_statement
from csms.storage import Connection, Database, Statement

PROFILES = (0, 1, 2, 3)


@dataclass(frozen=True)
class StationCredentials:
    """What a handshake needs to know about a station, read in one query."""

    known: bool
    password_hash: str | None = None
    pending_password_hash: str | None = None  # a rotation the station accepted but has not yet used
    profile: int | None = None  # as set by the operator; None: derived from the password (legacy)
    revoked: frozenset[str] = frozenset()  # SHA-256 fingerprints of certificates deleted from its inventory
    protocol: str | None = None  # the subprotocol recorded at its last connect (None: never connected)

    @property
    def required_profile(self) -> int:
        """The lowest profile a connection must reach: explicit, else 1 with a password and 0 without."""
        if self.profile is not None:
            return self.profile
        return 1 if self.password_hash is not None else 0


UNKNOWN = StationCredentials(known=False)

_CREDENTIALS = """
SELECT s.id, s.password_hash, s.pending_password_hash, s.security_profile, s.protocol,
       coalesce((SELECT array_agg(r.fingerprint) FROM revoked_certificates r WHERE r.station_id = s.id), '{}')
           AS revoked
FROM stations s WHERE s.id = ANY($1::text[])
"""
_INSERT_STATION_EVENT = (
    "INSERT INTO security_events (station_id, origin, type, tech_info, occurred_at, received_at)"
    " VALUES ($1, 'station', $2, $3, $4, $5)"
)
_INSERT_CSMS_EVENTS = """
INSERT INTO security_events (station_id, origin, type, tech_info, occurrences, occurred_at)
SELECT u.s, 'csms', u.t, u.i, u.n, u.at
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::timestamptz[]) AS u(s, t, i, n, at)
"""


def security_event(
    station_id: str, event_type: str, tech_info: str | None, occurred_at: datetime, received_at: datetime
) -> list[Statement]:
    """Write-op builder: a SecurityEventNotification in the security event log (part of the message's write),
    and its security.event.v1 in the outbox (whatever protocol version reported it)."""
    data = {"station_id": station_id, "type": event_type, "at": occurred_at.isoformat(), "tech_info": tech_info}
    return [
        Statement(_INSERT_STATION_EVENT, (station_id, event_type, tech_info, occurred_at, received_at)),
        event_statement(Event("security.event.v1", "station", station_id, station_id, data)),
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class SecurityStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- handshake -----------------------------------------------------------------------------------------

    async def credentials_many(self, station_ids: list[str]) -> list[StationCredentials]:
        rows = await self._db.fetch(_CREDENTIALS, list(set(station_ids)))
        found = {
            row["id"]: StationCredentials(
                True,
                row["password_hash"],
                row["pending_password_hash"],
                row["security_profile"],
                frozenset(row["revoked"]),
                row["protocol"],
            )
            for row in rows
        }
        return [found.get(station_id, UNKNOWN) for station_id in station_ids]

    async def promote_pending_password(self, station_id: str, pending_hash: str) -> bool:
        """The station connected with its new password: from now on only that one works."""
        result = await self._db.execute(
            "UPDATE stations SET password_hash = pending_password_hash, pending_password_hash = NULL,"
            " password_rotation = 'completed', password_rotated_at = now(), updated_at = now()"
            " WHERE id = $1 AND pending_password_hash = $2",
            station_id,
            pending_hash,
        )
        return result.endswith(" 1")

    # -- operator side -------------------------------------------------------------------------------------

    async def set_profile(self, station_id: str, profile: int | None) -> None:
        await self._db.execute(
            "UPDATE stations SET security_profile = $2, updated_at = now() WHERE id = $1", station_id, profile
        )

    async def begin_rotation(self, station_id: str, pending_hash: str) -> bool:
        """Remember the new password's hash beside the current one (both work until the station used it)."""
        result = await self._db.execute(
            "UPDATE stations SET pending_password_hash = $2, password_rotation = 'sent', updated_at = now()"
            " WHERE id = $1",
            station_id,
            pending_hash,
        )
        return result.endswith(" 1")

    async def end_rotation(self, station_id: str, pending_hash: str, accepted: bool) -> None:
        """The station's answer: keep the pending hash until it reconnects with it, or forget it."""
        if accepted:
            sql = (
                "UPDATE stations SET password_rotation = 'accepted'"
                " WHERE id = $1 AND pending_password_hash = $2 AND password_rotation = 'sent'"
            )
        else:
            sql = (
                "UPDATE stations SET pending_password_hash = NULL, password_rotation = 'rejected'"
                " WHERE id = $1 AND pending_password_hash = $2"
            )
        await self._db.execute(sql, station_id, pending_hash)

    async def security_state(self, station_id: str) -> dict[str, Any] | None:
        row = await self._db.fetchrow(
            "SELECT security_profile, password_hash IS NOT NULL AS has_password, password_rotation,"
            " password_rotated_at FROM stations WHERE id = $1",
            station_id,
        )
        if row is None:
            return None
        required = StationCredentials(True, "x" if row["has_password"] else None, None, row["security_profile"])
        return {
            "security_profile": required.required_profile,
            "security_profile_explicit": row["security_profile"] is not None,
            "has_password": row["has_password"],
            "password_rotation": row["password_rotation"],
            "password_rotated_at": _iso(row["password_rotated_at"]),
        }

    # -- certificate inventory -----------------------------------------------------------------------------

    async def add_certificate(self, station_id: str, info: dict[str, Any]) -> None:
        """Record a certificate issued to (or presented by) the station; a known fingerprint is kept as is."""
        await self._db.execute(
            "INSERT INTO station_certificates (station_id, fingerprint, serial_number, subject, issuer, not_before,"
            " not_after, pem) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (fingerprint) DO NOTHING",
            station_id,
            *(info[k] for k in ("fingerprint", "serial_number", "subject", "issuer", "not_before", "not_after", "pem")),
        )

    async def certificates(self, station_id: str) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            "SELECT fingerprint, serial_number, subject, issuer, not_before, not_after, created_at"
            " FROM station_certificates WHERE station_id = $1 ORDER BY not_after DESC",
            station_id,
        )
        return [{**dict(r), **{k: _iso(r[k]) for k in ("not_before", "not_after", "created_at")}} for r in rows]

    async def expiring(self, within_seconds: float) -> tuple[int, float | None]:
        """(certificates expiring within the window, seconds until the soonest expiry) over all stations."""
        row = await self._db.fetchrow(
            "SELECT count(*) FILTER (WHERE not_after < now() + make_interval(secs => $1)) AS expiring,"
            " extract(epoch FROM min(not_after) - now()) AS soonest FROM station_certificates",
            within_seconds,
        )
        assert row is not None
        soonest = row["soonest"]
        return int(row["expiring"]), None if soonest is None else float(soonest)

    async def create_request(self, station_id: str, csr_pem: str) -> int:
        return int(
            await self._db.fetchval(
                "INSERT INTO certificate_requests (station_id, csr_pem, status) VALUES ($1, $2, 'pending')"
                " RETURNING id",
                station_id,
                csr_pem,
            )
        )

    async def update_request(
        self, request_id: int, status: str, *, certificate_pem: str | None = None, detail: str | None = None
    ) -> None:
        await self._db.execute(
            "UPDATE certificate_requests SET status = $2, certificate_pem = coalesce($3, certificate_pem),"
            " detail = $4, updated_at = now() WHERE id = $1",
            request_id,
            status,
            certificate_pem,
            detail,
        )

    async def request(self, request_id: int) -> dict[str, Any] | None:
        rows = await self._requests("id = $1", request_id, 1)
        return rows[0] if rows else None

    async def requests(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        return await self._requests("($1::text IS NULL OR status = $1)", status, limit)

    async def _requests(self, where: str, arg: Any, limit: int) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            "SELECT id, station_id, csr_pem, status, certificate_pem, detail, created_at, updated_at"
            f" FROM certificate_requests WHERE {where} ORDER BY id DESC LIMIT $2",
            arg,
            limit,
        )
        return [{**dict(r), "created_at": _iso(r["created_at"]), "updated_at": _iso(r["updated_at"])} for r in rows]

    async def revoke(self, station_id: str, fingerprint: str) -> None:
        """Delete from the inventory and refuse the certificate from now on (known to us or not)."""

        async def op(conn: Connection) -> None:
            serial = await conn.fetchval(
                "DELETE FROM station_certificates WHERE station_id = $1 AND fingerprint = $2 RETURNING serial_number",
                station_id,
                fingerprint,
            )
            await conn.execute(
                "INSERT INTO revoked_certificates (fingerprint, station_id, serial_number) VALUES ($1, $2, $3)"
                " ON CONFLICT (fingerprint) DO NOTHING",
                fingerprint,
                station_id,
                serial or "",
            )

        await self._db.transaction(op)

    # -- security events -----------------------------------------------------------------------------------

    async def record_csms_events(self, events: list[tuple[str | None, str, str | None, int, datetime]]) -> None:
        """Many CSMS-side events at once: (station id, type, tech info, occurrences, first seen)."""
        if events:
            await self._db.execute(_INSERT_CSMS_EVENTS, *(list(column) for column in zip(*events, strict=True)))

    async def events(
        self, *, station_id: str | None, origin: str | None, event_type: str | None, before: int, limit: int
    ) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            "SELECT id, station_id, origin, type, tech_info, occurrences, occurred_at, received_at"
            " FROM security_events WHERE ($1::text IS NULL OR station_id = $1)"
            " AND ($2::text IS NULL OR origin = $2) AND ($3::text IS NULL OR type = $3) AND id < $4"
            " ORDER BY id DESC LIMIT $5",
            station_id,
            origin,
            event_type,
            before,
            limit,
        )
        return [{**dict(r), "occurred_at": _iso(r["occurred_at"]), "received_at": _iso(r["received_at"])} for r in rows]
