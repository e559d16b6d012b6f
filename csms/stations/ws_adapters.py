"""Adapters between trio-websocket and the gateway: a contained handler nursery and the RPC transport."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio
from trio_websocket import WebSocketConnection
from wsproto.events import Ping

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


class _EagerSendLock:
    """Stands in for a connection's send lock (trio-websocket 0.12 only ever takes it with ``async with``):
    taken without a trip through trio's scheduler when free, as it nearly always is. trio's own ``acquire``
    yields even then, and under load every trip waits a whole scheduling batch before the answer leaves."""

    def __init__(self) -> None:
        self._lock = trio.StrictFIFOLock()

    async def __aenter__(self) -> None:
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._lock.release()


def send_eagerly(ws: WebSocketConnection) -> None:
    """Swap in the eager send lock. Only while nobody holds the old one (no checkpoint between the check and
    the swap), so two senders can never each hold a different lock."""
    if isinstance(ws._stream_lock, trio.StrictFIFOLock) and not ws._stream_lock.locked():
        ws._stream_lock = _EagerSendLock()  # type: ignore[assignment]


class WebSocketTransport:
    """Adapts a trio-websocket connection to the RPC layer's transport protocol."""

    def __init__(self, ws: WebSocketConnection, heard: Callable[[], None] = lambda: None) -> None:
        self._ws = ws
        send_eagerly(ws)
        self._heard = heard  # every message received: the keep-alive need not ping a station that talks

    async def send(self, text: str) -> None:
        await self._ws.send_message(text)

    async def receive(self) -> str | bytes:
        message = await self._ws.get_message()
        self._heard()
        return message

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


_answer_ping = WebSocketConnection._handle_ping_event
_HEARD = "_csms_heard"


async def _answer_and_note(self: WebSocketConnection, event: Ping) -> None:
    heard = self.__dict__.get(_HEARD)
    if heard is not None:
        heard()
    await _answer_ping(self, event)


def note_station_pings() -> None:
    """Make a station's Ping call the `heard` its connection was given (`hear_pings`). trio-websocket answers
    a Ping inside its reader task with no hook, and many stations ping every few seconds: each of their pings
    proves the host alive as well as ours would, so the keep-alive skips its own. The class's handler is
    wrapped once, before any connection's reader binds it; connections without a `heard` are untouched."""
    if WebSocketConnection._handle_ping_event is not _answer_and_note:
        WebSocketConnection._handle_ping_event = _answer_and_note  # type: ignore[method-assign]


def hear_pings(ws: WebSocketConnection, heard: Callable[[], None]) -> None:
    ws.__dict__[_HEARD] = heard
