"""The id-tag store: the only code that reads or writes the `id_tags` table."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocpp.v16.enums import AuthorizationStatus
from ocpp.v201.enums import IdTokenEnumType

from csms.outbox import Event, emit
from csms.storage import Connection, Database

MIGRATIONS = Path(__file__).parent / "migrations"

# The spec package's enums, not copies: 1.6's idTagInfo statuses, and 2.0.1's IdTokenEnumType (a tag stored
# without a type matches any of them).
STATUSES = tuple(s.value for s in AuthorizationStatus)
TOKEN_TYPES = tuple(t.value for t in IdTokenEnumType)
_SELECT = "SELECT id_tag, status, expiry_date, parent_id_tag, token_type FROM id_tags"


@dataclass(frozen=True)
class IdTag:
    id_tag: str
    status: str
    expiry_date: datetime | None
    parent_id_tag: str | None
    token_type: str | None = None


_PUT = """
INSERT INTO id_tags (id_tag, status, expiry_date, parent_id_tag, token_type) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id_tag) DO UPDATE SET status = EXCLUDED.status, expiry_date = EXCLUDED.expiry_date,
    parent_id_tag = EXCLUDED.parent_id_tag, token_type = EXCLUDED.token_type, updated_at = now()
RETURNING id_tag, status, expiry_date, parent_id_tag, token_type, (xmax = 0) AS created
"""


def _changed(id_tag: str, *, deleted: bool, **data: Any) -> Event:
    return Event("id_tag.changed.v1", "id_tag", id_tag, None, {"id_tag": id_tag, "deleted": deleted, **data})


def _row_to_tag(row: Any) -> IdTag:
    return IdTag(row["id_tag"], row["status"], row["expiry_date"], row["parent_id_tag"], row["token_type"])


class IdTagStore:
    """`cache_seconds` > 0 keeps Authorize/Start/Stop lookups in memory that long: 15 % of a busy replica's
    messages were id-tag reads, each a Postgres round trip. Changes made through this replica apply at once;
    other replicas see them within `cache_seconds` (stations keep their own authorization cache far longer)."""

    def __init__(self, db: Database, *, cache_seconds: float = 0.0, cache_size: int = 100_000) -> None:
        self._db = db
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._cache: OrderedDict[str, tuple[float, IdTag | None]] = OrderedDict()

    async def _lookup(self, id_tag: str) -> IdTag | None:
        if self._cache_seconds <= 0:
            return await self.get(id_tag)
        now = time.monotonic()
        hit = self._cache.get(id_tag)
        if hit is not None and hit[0] > now:
            return hit[1]
        tag = await self.get(id_tag)
        self._cache[id_tag] = (now + self._cache_seconds, tag)
        self._cache.move_to_end(id_tag)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return tag

    async def id_tag_info(self, id_tag: str, *, now: datetime | None = None) -> dict[str, Any]:
        """The OCPP 1.6 idTagInfo for a tag: unknown tags are Invalid, lapsed ones Expired."""
        tag = await self._lookup(id_tag)
        if tag is None:
            return {"status": "Invalid"}
        info: dict[str, Any] = {"status": tag.status}
        if tag.expiry_date is not None:
            info["expiryDate"] = tag.expiry_date.isoformat()
            if tag.status == "Accepted" and tag.expiry_date <= (now or datetime.now(UTC)):
                info["status"] = "Expired"
        if tag.parent_id_tag:
            info["parentIdTag"] = tag.parent_id_tag
        return info

    async def id_token_info(self, id_token: str, token_type: str, *, now: datetime | None = None) -> dict[str, Any]:
        """The OCPP 2.0.1 IdTokenInfo: unknown tokens are Unknown, a type other than the stored one Invalid,
        lapsed ones Expired; NoAuthorization (the station needs none) is Accepted without a look-up."""
        if token_type == "NoAuthorization":
            return {"status": "Accepted"}
        tag = await self._lookup(id_token)
        if tag is None:
            return {"status": "Unknown"}
        if tag.token_type is not None and tag.token_type != token_type:
            return {"status": "Invalid"}
        info: dict[str, Any] = {"status": tag.status}
        if tag.expiry_date is not None:
            info["cacheExpiryDateTime"] = tag.expiry_date.isoformat()
            if tag.status == "Accepted" and tag.expiry_date <= (now or datetime.now(UTC)):
                info["status"] = "Expired"
        if tag.parent_id_tag:
            info["groupIdToken"] = {"idToken": tag.parent_id_tag, "type": "Central"}  # a group the CSMS issued
        return info

    async def get(self, id_tag: str) -> IdTag | None:
        row = await self._db.fetchrow(f"{_SELECT} WHERE id_tag = $1", id_tag)
        return _row_to_tag(row) if row else None

    async def page(self, *, limit: int = 100, after: str = "") -> list[IdTag]:
        rows = await self._db.fetch(f"{_SELECT} WHERE id_tag > $1 ORDER BY id_tag LIMIT $2", after, limit)
        return [_row_to_tag(row) for row in rows]

    async def local_list_entries(
        self, *, changed_since: datetime | None, limit: int, protocol: str = "ocpp1.6"
    ) -> list[dict[str, Any]]:
        """SendLocalList entries for tags changed since the last sync (all if None): 1.6 idTag + idTagInfo, or
        2.0.1 idToken (with its type; an untyped tag as ISO14443, the RFID cards 1.6 tags are) + idTokenInfo."""
        rows = await self._db.fetch(
            "SELECT id_tag, status, expiry_date, parent_id_tag, token_type FROM id_tags"
            " WHERE ($1::timestamptz IS NULL OR updated_at > $1) ORDER BY id_tag LIMIT $2",
            changed_since,
            limit,
        )
        entry = _local_entry_v201 if protocol == "ocpp2.0.1" else _local_entry_v16
        return [entry(row) for row in rows]

    async def put(
        self,
        id_tag: str,
        status: str,
        expiry_date: datetime | None,
        parent_id_tag: str | None,
        token_type: str | None = None,
    ) -> tuple[IdTag, bool]:
        """Create or replace; returns the tag and whether it was created."""

        async def op(conn: Connection) -> Any:
            row = await conn.fetchrow(_PUT, id_tag, status, expiry_date, parent_id_tag, token_type)
            data = {"status": status, "expiry_date": expiry_date.isoformat() if expiry_date else None}
            await emit(
                conn, _changed(id_tag, deleted=False, **data, parent_id_tag=parent_id_tag, token_type=token_type)
            )
            return row

        row = await self._db.transaction(op)
        assert row is not None
        self._cache.pop(id_tag, None)  # after the commit: a lookup racing the write cannot re-cache the old tag
        return _row_to_tag(row), bool(row["created"])

    async def delete(self, id_tag: str) -> bool:
        async def op(conn: Connection) -> bool:
            result = await conn.execute("DELETE FROM id_tags WHERE id_tag = $1", id_tag)
            if not result.endswith(" 1"):
                return False
            await emit(conn, _changed(id_tag, deleted=True))
            return True

        deleted = await self._db.transaction(op)
        self._cache.pop(id_tag, None)
        return deleted


def _local_entry_v16(row: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"status": row["status"]}
    if row["expiry_date"] is not None:
        info["expiryDate"] = row["expiry_date"].isoformat()
    if row["parent_id_tag"]:
        info["parentIdTag"] = row["parent_id_tag"]
    return {"idTag": row["id_tag"], "idTagInfo": info}


def _local_entry_v201(row: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"status": row["status"]}
    if row["expiry_date"] is not None:
        info["cacheExpiryDateTime"] = row["expiry_date"].isoformat()
    if row["parent_id_tag"]:
        info["groupIdToken"] = {"idToken": row["parent_id_tag"], "type": "Central"}  # as id_token_info says
    return {"idToken": {"idToken": row["id_tag"], "type": row["token_type"] or "ISO14443"}, "idTokenInfo": info}
