"""The console's own audit trail (table ``console_audit``): sign-ins, sign-outs and id-tag changes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from csms.commands import Actor
from csms.storage import Database

MIGRATIONS = Path(__file__).parent / "migrations"


class ConsoleAudit:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, actor: Actor, action: str, target: str, outcome: str, detail: Any = None) -> None:
        """``actor`` is stored by name (console:<token name>); its role goes into ``detail``."""
        detail = {"role": actor.role, **(detail or {})}
        await self._db.fetchval(
            "INSERT INTO console_audit (actor, action, target, outcome, detail) VALUES ($1, $2, $3, $4, $5::jsonb)"
            " RETURNING id",
            actor.name,
            action,
            target,
            outcome,
            orjson.dumps(detail).decode(),
        )

    async def page(self, *, limit: int, before_id: int | None = None) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            "SELECT id, at, actor, action, target, outcome, detail FROM console_audit"
            " WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
            before_id,
            limit,
        )
        return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in dict(r).items()} for r in rows]
