"""Reclaim after a failover, shared by the protocol adapters: a station back without booting is asked, with its
version's TriggerMessage, for what CSMS_RECLAIM_TRIGGER names."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from csms.ocpp import RpcSession, SessionClosed
from csms.stations import StationConnection
from csms.storage import StorageError

log = logging.getLogger(__name__)

Payload = dict[str, Any]
# The TriggerMessage requests of one version for a station (reads what it knows of the station's connectors).
Requests = Callable[[StationConnection, str], Awaitable[list[Payload]]]


async def reclaim(conn: StationConnection, trigger: str, delay: float, requests: Requests) -> None:
    """Each kind ("boot", "status") on its own: a storage failure reading what to ask for skips that kind and
    leaves the connection alone (this runs in the connection's nursery: an error here would close it)."""
    if trigger == "none":
        return
    await trio.sleep(delay)
    rpc = conn.rpc
    if conn.booted or rpc is None:
        return
    for kind in ("boot", "status") if trigger == "both" else (trigger,):
        try:
            asked = await requests(conn, kind)
        except StorageError as exc:
            log.warning("reclaim trigger skipped", extra={"station_id": conn.station_id, "error": repr(exc)})
            continue
        if not await _ask(conn, rpc, asked):
            return


async def _ask(conn: StationConnection, rpc: RpcSession, asked: list[Payload]) -> bool:
    """Send the TriggerMessages; False once the session is closed."""
    for request in asked:
        conn.triggered.add(request["requestedMessage"])  # a Pending 2.0.1 station may send what we asked for
        try:
            await rpc.call("TriggerMessage", request)
        except SessionClosed:
            return False
        except Exception as exc:  # a station may reject or ignore one trigger; ask for the rest anyway
            log.info(
                "TriggerMessage after reconnect failed",
                extra={"station_id": conn.station_id, "request": request, "error": repr(exc)},
            )
    return True
