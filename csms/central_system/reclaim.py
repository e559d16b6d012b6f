"""Reclaim after a failover, shared by the protocol adapters: a station back without booting is asked, with its
version's TriggerMessage, for what CSMS_RECLAIM_TRIGGER names."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from csms.ocpp import SessionClosed
from csms.stations import StationConnection

log = logging.getLogger(__name__)

Payload = dict[str, Any]
# The TriggerMessage requests of one version for a station (reads what it knows of the station's connectors).
Requests = Callable[[StationConnection, str], Awaitable[list[Payload]]]


async def reclaim(conn: StationConnection, trigger: str, delay: float, requests: Requests) -> None:
    if trigger == "none":
        return
    await trio.sleep(delay)
    if conn.booted or conn.rpc is None:
        return
    for request in await requests(conn, trigger):
        conn.triggered.add(request["requestedMessage"])  # a Pending 2.0.1 station may send what we asked for
        try:
            await conn.rpc.call("TriggerMessage", request)
        except SessionClosed:
            return
        except Exception as exc:  # a station may reject or ignore one trigger; ask for the rest anyway
            log.info(
                "TriggerMessage after reconnect failed",
                extra={"station_id": conn.station_id, "request": request, "error": repr(exc)},
            )
