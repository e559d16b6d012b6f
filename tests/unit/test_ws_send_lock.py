"""A station's answer leaves without an extra trip through trio's scheduler for trio-websocket's send lock."""

from __future__ import annotations

import pytest
import trio
from trio_websocket import WebSocketConnection, WebSocketRequest, open_websocket, serve_websocket

from csms.stations.ws_adapters import WebSocketTransport
from tests.batches import BatchCounter

pytestmark = pytest.mark.fast

SENDS = 20


async def test_a_send_costs_one_scheduler_trip_not_two() -> None:
    """trio's Lock.acquire yields even when the lock is free, and under load each trip waits a whole batch;
    what is left is the socket send's own checkpoint after the bytes are out."""
    batches = BatchCounter()
    per_send: list[float] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        transport = WebSocketTransport(ws)
        start = batches.count
        for i in range(SENDS):
            await transport.send(f"answer {i}")
        per_send.append((batches.count - start) / SENDS)
        await ws.get_message()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
        nursery.start_soon(batches.run)
        async with open_websocket("127.0.0.1", server.port, "/", use_ssl=False) as client:
            for _ in range(SENDS):
                await client.get_message()
            await client.send_message("bye")
        nursery.cancel_scope.cancel()
    assert per_send and per_send[0] <= 1.5, f"{per_send[0]:.2f} scheduler batches per send"


async def test_the_lock_is_swapped_only_while_nobody_holds_it() -> None:
    ws = WebSocketConnection.__new__(WebSocketConnection)
    ws._stream_lock = trio.StrictFIFOLock()
    await ws._stream_lock.acquire()
    held = ws._stream_lock
    WebSocketTransport(ws)
    assert ws._stream_lock is held
