"""OCPP 2.0.1 remote start: RequestStartTransaction's remoteStartId, linked to the transaction that follows.

The request is recorded before it is sent (`remote_start_requested`), the station's answer is added when it
comes (`remote_start_answered`), and the transaction handler links its TransactionEvent(Started) with
`take_remote_start` inside its own unit of work, whichever of these happens first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from csms.storage import Connection

_TAKE = """
UPDATE remote_start_requests SET linked_at = coalesce(linked_at, now()),
    transaction_id = coalesce($3, transaction_id)
WHERE id = (SELECT id FROM remote_start_requests WHERE station_id = $1 AND remote_start_id = $2
            ORDER BY id DESC LIMIT 1)
RETURNING id, remote_start_id, id_token, id_token_type, evse_id, command_id, status
"""


@dataclass(frozen=True)
class RemoteStart:
    """What the operator asked for; `status` is the station's answer (Requested while none came yet)."""

    id: int
    remote_start_id: int
    id_token: str
    id_token_type: str
    evse_id: int | None
    command_id: int | None
    status: str


async def take_remote_start(
    conn: Connection, station_id: str, remote_start_id: int, transaction_id: str | None = None
) -> RemoteStart | None:
    """Link the latest request with this remoteStartId to a transaction (the station's transactionId, if
    given); None if the CSMS never asked. A write-op step: only awaits `conn`, and is safe to repeat (a
    retried or replayed Started event links the same request again)."""
    row = await conn.fetchrow(_TAKE, station_id, remote_start_id, transaction_id)
    return RemoteStart(**dict(row)) if row is not None else None


async def remote_start_requested(
    conn: Connection,
    station_id: str,
    remote_start_id: int,
    id_token: dict[str, Any],
    evse_id: int | None,
    command_id: int | None,
) -> None:
    await conn.execute(
        "INSERT INTO remote_start_requests (station_id, remote_start_id, id_token, id_token_type, evse_id,"
        " command_id) VALUES ($1, $2, $3, $4, $5, $6)",
        station_id,
        remote_start_id,
        id_token["idToken"],
        id_token["type"],
        evse_id,
        command_id,
    )


async def remote_start_answered(conn: Connection, command_id: int, answer: dict[str, Any]) -> None:
    await conn.execute(
        "UPDATE remote_start_requests SET status = $2, transaction_id = coalesce(transaction_id, $3)"
        " WHERE command_id = $1",
        command_id,
        answer.get("status", "Rejected"),
        answer.get("transactionId"),
    )
