"""LISTEN on a Postgres channel from trio: the event channel between replicas (every replica hears a NOTIFY
sent in any replica's transaction, at its commit).

One dedicated connection (outside the pools: LISTEN is session state) whose notifications asyncpg hands to a
plain callback. The connection is checked from the trio side (a ping every few seconds under a trio deadline;
no asyncio timers, which would tax every other bridge crossing) and replaced after a loss, with a call to
``on_reconnect`` because notifications sent meanwhile are gone: listeners must then re-read what they show.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import asyncpg
import trio

from csms.storage.bridge import AsyncioBridge
from csms.storage.errors import StorageError

log = logging.getLogger(__name__)

_PING_EVERY = 5.0
_PING_TIMEOUT = 3.0
_CONNECT_TIMEOUT = 5.0
_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)


async def _connect(url: str, channel: str, on_message: Callable[[str], None], on_lost: Callable[[], None]) -> Any:
    """asyncio side: a connection that LISTENs on ``channel``."""
    conn = await asyncpg.connect(url, timeout=_CONNECT_TIMEOUT, server_settings={"application_name": "csms-listen"})
    try:
        conn.add_termination_listener(lambda _conn: on_lost())
        await conn.add_listener(channel, lambda _conn, _pid, _channel, payload: on_message(payload))
    except BaseException:
        conn.terminate()
        raise
    return conn


async def _ping(conn: Any) -> None:
    await conn.execute("SELECT 1")


async def listen(
    bridge: AsyncioBridge,
    url: str,
    channel: str,
    on_message: Callable[[str], None],
    *,
    on_reconnect: Callable[[], None],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Deliver ``channel``'s payloads to ``on_message`` (called on the trio thread; must not block) until
    cancelled. ``task_status.started()`` once the first LISTEN is in place."""
    started = False
    failures = 0
    while True:
        lost = trio.Event()
        conn = None
        try:
            with trio.fail_after(_CONNECT_TIMEOUT + 1):
                conn = await bridge.run(_connect, url, channel, on_message, lost.set)
            if started:
                on_reconnect()
            else:
                started = True
                task_status.started()
            failures = 0
            while not lost.is_set():
                with trio.move_on_after(_PING_EVERY):
                    await lost.wait()
                if not lost.is_set():
                    with trio.fail_after(_PING_TIMEOUT):
                        await bridge.run(_ping, conn)
        except (StorageError, OSError, trio.TooSlowError) as exc:
            if failures == 0:
                log.warning("change listener lost Postgres; reconnecting", extra={"error": str(exc)})
        finally:
            if conn is not None:
                conn.terminate()
        failures += 1
        await trio.sleep(_BACKOFF[min(failures, len(_BACKOFF)) - 1])
