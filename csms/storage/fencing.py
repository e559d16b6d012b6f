"""Fence tokens in Postgres (ARCHITECTURE.md section 3): the last line against a node writing for a station
it no longer owns. Tokens only ever grow; a write commits only while its token is the station's current one.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

# Accept a strictly newer token; re-recording the same (token, node) is an idempotent retry of one claim.
RECORD_FENCE = """
INSERT INTO station_fences (station_id, fence, node_id, claimed_at) VALUES ($1, $2, $3, now())
ON CONFLICT (station_id) DO UPDATE
   SET fence = EXCLUDED.fence, node_id = EXCLUDED.node_id, claimed_at = EXCLUDED.claimed_at
 WHERE station_fences.fence < EXCLUDED.fence
    OR (station_fences.fence = EXCLUDED.fence AND station_fences.node_id = EXCLUDED.node_id)
RETURNING fence
"""

# The same rule for many stations (distinct ids) in one statement; the accepted ones come back.
RECORD_FENCES = """
INSERT INTO station_fences (station_id, fence, node_id, claimed_at)
SELECT station_id, fence, node_id, now()
  FROM unnest($1::text[], $2::bigint[], $3::text[]) AS r(station_id, fence, node_id)
ON CONFLICT (station_id) DO UPDATE
   SET fence = EXCLUDED.fence, node_id = EXCLUDED.node_id, claimed_at = EXCLUDED.claimed_at
 WHERE station_fences.fence < EXCLUDED.fence
    OR (station_fences.fence = EXCLUDED.fence AND station_fences.node_id = EXCLUDED.node_id)
RETURNING station_id
"""

CURRENT_FENCE = "SELECT fence FROM station_fences WHERE station_id = $1"

# FOR SHARE: a concurrent claim (UPDATE of the row) waits until this write transaction commits, so a
# write that passed the check can never commit after the station was claimed by someone else.
_LOCK_FENCES = "SELECT station_id, fence FROM station_fences WHERE station_id = ANY($1::text[]) FOR SHARE"


async def lock_current_fences(conn: asyncpg.Connection, station_ids: Iterable[str]) -> dict[str, int]:
    """asyncio side, inside a transaction: one query for a whole batch's stations."""
    ids = sorted(set(station_ids))
    if not ids:
        return {}
    rows = await conn.fetch(_LOCK_FENCES, ids)
    return {row["station_id"]: row["fence"] for row in rows}
