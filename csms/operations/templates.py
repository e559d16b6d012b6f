"""Named charging-profile templates: a 1.6 csChargingProfiles object stored once and sent by name.

The only code that touches `charging_profile_templates`. What a template may hold is checked by the caller
(the API: the SetChargingProfile rules); what it becomes when used is decided there too.
"""

from __future__ import annotations

from typing import Any

import orjson

from csms.storage import Database

_COLUMNS = "name, profile, default_profile_id, updated_by, created_at, updated_at"


def _template(row: Any) -> dict[str, Any]:
    """The profile as it will be sent: its own chargingProfileId, else the template's stable default."""
    profile = row["profile"]
    profile = orjson.loads(profile) if isinstance(profile, str) else profile
    return {
        "name": row["name"],
        "profile": {"chargingProfileId": row["default_profile_id"], **profile},
        "updated_by": row["updated_by"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


class ProfileTemplates:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, name: str, profile: dict[str, Any], updated_by: str) -> tuple[dict[str, Any], bool]:
        """Create or replace (a replaced template keeps its default chargingProfileId); True if created."""
        row = await self._db.fetchrow(
            f"""
            INSERT INTO charging_profile_templates (name, profile, updated_by) VALUES ($1, $2::jsonb, $3)
            ON CONFLICT (name) DO UPDATE SET profile = EXCLUDED.profile, updated_by = EXCLUDED.updated_by,
                updated_at = now()
            RETURNING {_COLUMNS}, (xmax = 0) AS created
            """,
            name,
            orjson.dumps(profile).decode(),
            updated_by,
        )
        assert row is not None
        return _template(row), bool(row["created"])

    async def get(self, name: str) -> dict[str, Any] | None:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM charging_profile_templates WHERE name = $1", name)
        return _template(row) if row else None

    async def page(self, *, limit: int, after: str) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM charging_profile_templates WHERE name > $1 ORDER BY name LIMIT $2",
            after,
            limit,
        )
        return [_template(r) for r in rows]

    async def delete(self, name: str) -> bool:
        result = await self._db.execute("DELETE FROM charging_profile_templates WHERE name = $1", name)
        return result.endswith(" 1")
