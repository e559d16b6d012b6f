"""The per-connection call handler both protocol versions share: storage-domain check, fencing, outages.

A version supplies its action table and (optionally) a gate that may refuse an action before it runs (2.0.1's
boot rules); everything about how a handler's storage failure reaches the station is the same for all versions.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from csms.central_system.timestamps import now, wire
from csms.ocpp import (
    INTERNAL_ERROR,
    NOT_SUPPORTED,
    PROPERTY_CONSTRAINT_VIOLATION,
    AnswerWithheld,
    CallHandler,
    DomainCheck,
    OcppError,
)
from csms.stations import LastSeen, StationConnection
from csms.storage import DatabaseUnavailable, Fence, FenceRejected, ValueRejected, unit_of_work

log = logging.getLogger(__name__)

Payload = dict[str, Any]
Handler = Callable[[StationConnection, Fence, Payload], Awaitable[Payload]]
Gate = Callable[[str], Awaitable[None]]  # raises OcppError to refuse the action


async def heartbeat(conn: StationConnection, fence: Fence, p: Payload) -> Payload:
    """Answered at once, no write of its own: `station_handler` noted the station in LastSeen, whose batched,
    unfenced flush is the only writer of `last_seen_at` (a durable, fenced write per Heartbeat was a quarter of
    an idle fleet's CPU). A stale connection is still closed: see docs/design/ownership-and-fencing.md."""
    return {"currentTime": wire(now())}


def station_handler(
    conn: StationConnection,
    handlers: dict[str, Handler],
    domain: DomainCheck,
    last_seen: LastSeen,
    gate: Gate | None = None,
) -> CallHandler:
    fence = Fence(conn.station_id, conn.fence)

    async def handle(action: str, payload: Payload) -> Payload:
        last_seen.saw(conn.station_id)
        handler = handlers.get(action)
        if handler is None:
            raise OcppError(NOT_SUPPORTED, f"{action} is not supported by this central system")
        if gate is not None:
            await gate(action)
        station = {"station_id": conn.station_id, "action": action}
        try:
            domain.check_request(action, payload)
        except OcppError as exc:
            log.warning("refused a value storage cannot hold", extra={**station, "error": exc.description})
            raise
        try:
            with unit_of_work():  # one message, one write: a second one is a bug (SecondWrite)
                return await handler(conn, fence, payload)
        except FenceRejected:
            # Another replica owns this station now: never answer for it again from here. No CallError
            # either (a station may take it as final): unanswered, the call is resent to the new owner.
            conn.close(1008, "ownership moved to another replica")
            raise AnswerWithheld("another replica owns the station now") from None
        except ValueRejected as exc:  # the domain check should have caught it: the sender's data all the same
            log.warning("storage refused a value the station sent", extra={**station, "error": str(exc)})
            raise OcppError(PROPERTY_CONSTRAINT_VIOLATION, f"a value of this {action} cannot be stored") from None
        except DatabaseUnavailable as exc:
            # No station in the line: during an outage the log gets one line per interval, not one per call.
            log.warning("database unavailable; calls answered with InternalError", extra={"error": str(exc)})
            raise OcppError(INTERNAL_ERROR, "the central system cannot store this now; retry later") from None

    return handle
