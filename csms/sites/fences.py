"""Site fence tokens in Postgres: one computing replica per site, enforced where it writes and where it sends.

Taking a site allocates the next token (previous + 1, monotonic per site, like station fences). Site-state
writes lock the site's token row FOR SHARE and commit only while their token is current, so a write that passed
the check can never commit after another replica took the site. A profile sent for the site carries the token
and the station's owner checks it (``current``) immediately before the send (commands' guard).
"""

from __future__ import annotations

from csms.storage import Connection, Database

GUARD_PREFIX = "site:"  # commands' guard key for a site's token: "site:<id>"


class SiteFenceSuperseded(Exception):
    """Another replica took the site since this token was allocated: stop acting for it."""

    def __init__(self, site_id: str, fence: int) -> None:
        super().__init__(f"site {site_id}: fence {fence} superseded")
        self.site_id, self.fence = site_id, fence


class SiteFences:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def take(self, site_id: str, node_id: str) -> int:
        """The next token for the site: every earlier holder's writes and sends are refused from now on."""
        return int(
            await self._db.fetchval(
                "INSERT INTO site_fences AS f (site_id, fence, node_id) VALUES ($1, 1, $2) ON CONFLICT (site_id)"
                " DO UPDATE SET fence = f.fence + 1, node_id = EXCLUDED.node_id, claimed_at = now() RETURNING fence",
                site_id,
                node_id,
            )
        )

    async def current(self, site_id: str, fence: int) -> bool:
        return bool(await self._db.fetchval("SELECT fence = $2 FROM site_fences WHERE site_id = $1", site_id, fence))

    async def check(self, guard_key: str, token: int) -> bool:
        """Commands' guard check for a key "site:<id>"; any other key is not ours (refused)."""
        if not guard_key.startswith(GUARD_PREFIX):
            return False
        return await self.current(guard_key[len(GUARD_PREFIX) :], token)


async def lock_fence(conn: Connection, site_id: str, fence: int) -> None:
    """Inside a write transaction: raise SiteFenceSuperseded unless ``fence`` is the site's current token; the
    row stays locked FOR SHARE until commit, so a concurrent take waits for this write."""
    current = await conn.fetchval("SELECT fence FROM site_fences WHERE site_id = $1 FOR SHARE", site_id)
    if current != fence:
        raise SiteFenceSuperseded(site_id, fence)
