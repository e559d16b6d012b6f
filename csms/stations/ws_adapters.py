"""Adapters between trio-websocket and the gateway: a contained handler nursery and the RPC transport."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio
from trio_websocket import WebSocketConnection

log = logging.getLogger(__name__)


class Contained:
    """The server's handler nursery, seen through a wrapper that keeps one connection's failure to itself.

    Our handler catches what it raises, but trio-websocket's own tasks for a connection can fail too: a Ping
    the station sends while we are closing makes its reader task answer with a Pong that wsproto refuses in
    LOCAL_CLOSING (trio-websocket issue #184, open), and that LocalProtocolError used to escape into the
    nursery every station shares and stop the replica. trio.serve_listeners accepts any object with
    start_soon for this purpose.
    """

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def start_soon(self, async_fn: Callable[..., Awaitable[object]], *args: object, name: object = None) -> None:
        self._nursery.start_soon(_contained, async_fn, *args, name=name or async_fn)


async def _contained(async_fn: Callable[..., Awaitable[object]], *args: object) -> None:
    try:
        await async_fn(*args)
    except Exception as exc:  # one connection's library failure: that connection is gone, the rest serve on
        log.warning("connection ended by a WebSocket library error", extra={"error": repr(exc)})


class WebSocketTransport:
    """Adapts a trio-websocket connection to the RPC layer's transport protocol."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws

    async def send(self, text: str) -> None:
        await self._ws.send_message(text)

    async def receive(self) -> str | bytes:
        return await self._ws.get_message()

    def buffered(self) -> list[str | bytes]:
        # trio-websocket has no public "take without waiting"; its receive channel holds the messages it has
        # already read off the socket (at most message_queue_size), and receive_nowait never blocks.
        channel = self._ws._recv_channel
        messages: list[str | bytes] = []
        while True:
            try:
                messages.append(channel.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return messages
