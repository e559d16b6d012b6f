"""Fence tokens in Postgres (ARCHITECTURE.md section 3): the last line against a node writing for a station
it no longer owns. A write commits only while its fence is the station's current one.

A claim arrives with its coordinator ordering key (epoch, revision): the revision orders claims inside one
coordinator domain (etcd's revision, a lone node's counter), the epoch orders domains (issued here, see
``FENCE_EPOCH``). A claim is recorded only if its key is newer than the recorded one, so when two replicas race,
the coordinator's order decides, not the order their records reach Postgres. The fence itself is allocated
here (previous + 1): it grows per station whatever coordinator issued the claim, even across an etcd rebuilt
from empty (revisions restart, the epoch moves on) or a move from a single node to a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

# A newer key takes the station (fence + 1); the same key by the same node is an idempotent retry of one claim
# (same fence back). Anything else returns no row: a newer claim is recorded, stand down.
_UPSERT = """
ON CONFLICT (station_id) DO UPDATE
   SET fence = f.fence + CASE WHEN (f.epoch, f.revision) < (EXCLUDED.epoch, EXCLUDED.revision) THEN 1 ELSE 0 END,
       epoch = EXCLUDED.epoch, revision = EXCLUDED.revision, node_id = EXCLUDED.node_id,
       claimed_at = EXCLUDED.claimed_at
 WHERE (f.epoch, f.revision) < (EXCLUDED.epoch, EXCLUDED.revision)
    OR ((f.epoch, f.revision) = (EXCLUDED.epoch, EXCLUDED.revision) AND f.node_id = EXCLUDED.node_id)
"""

RECORD_FENCE = f"""
INSERT INTO station_fences AS f (station_id, fence, epoch, revision, node_id, claimed_at)
VALUES ($1, 1, $2, $3, $4, now())
{_UPSERT}
RETURNING fence
"""

# The same rule for many stations (distinct ids) in one statement; the accepted ones come back with their fence.
RECORD_FENCES = f"""
INSERT INTO station_fences AS f (station_id, fence, epoch, revision, node_id, claimed_at)
SELECT station_id, 1, epoch, revision, node_id, now()
  FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[]) AS r(station_id, epoch, revision, node_id)
{_UPSERT}
RETURNING station_id, fence
"""

CURRENT_FENCE = "SELECT fence FROM station_fences WHERE station_id = $1"

# A domain's epoch (issued the first time the domain is seen, so later domains get larger epochs), and whether
# it is still the newest one: a coordinator whose domain fell behind (another domain served meanwhile) starts
# a new domain rather than lose every station to the other one's claims.
FENCE_EPOCH = """
WITH e AS (
    INSERT INTO fence_epochs (domain) VALUES ($1)
    ON CONFLICT (domain) DO UPDATE SET domain = EXCLUDED.domain
    RETURNING epoch
)
SELECT e.epoch, e.epoch >= coalesce((SELECT max(epoch) FROM fence_epochs), 0) AS newest FROM e
"""

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
