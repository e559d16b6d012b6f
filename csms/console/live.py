"""Live updates for open consoles: Postgres NOTIFY from every replica, fanned out to this replica's SSE clients.

Modules' triggers NOTIFY ``csms_changes`` with "<kind> <key>" when rows change (any replica's commit reaches every
listener), and a watcher adds "cluster" when the replica set or leader changes. The hub listens only while a
console is open here, gathers changes for ``flush_interval`` and sends each client one message with the kinds and
stations it cares about. A client's queue is small and bounded: a client that does not keep up is dropped (its
browser reconnects and re-reads the page), so a slow console never holds memory or delays anyone else, and the
hub never touches station traffic.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import trio

from cluster import Coordinator
from csms.storage import Database

log = logging.getLogger(__name__)

CHANNEL = "csms_changes"
KINDS = frozenset({"station", "status", "notice", "presence", "meter", "tx", "command", "ops", "idtag", "cluster"})


@dataclass(eq=False)
class Client:
    kinds: frozenset[str]
    station: str | None
    send: trio.MemorySendChannel[bytes]

    def wants(self, kind: str, key: str) -> bool:
        return kind in self.kinds and (self.station is None or kind == "cluster" or key == self.station)


@dataclass
class _Pending:
    changes: set[tuple[str, str]] = field(default_factory=set)
    resync: bool = False


class LiveHub:
    def __init__(
        self,
        db: Database,
        coordinator: Coordinator,
        *,
        flush_interval: float = 0.25,
        client_queue: int = 16,
        max_clients: int = 500,
        max_pending: int = 20_000,
        cluster_poll: float = 1.0,
        idle_after: float = 30.0,
    ) -> None:
        self._db = db
        self._coordinator = coordinator
        self._flush_interval = flush_interval
        self._client_queue = client_queue
        self.max_clients = max_clients
        self._max_pending = max_pending
        self._cluster_poll = cluster_poll
        self._idle_after = idle_after
        self._clients: set[Client] = set()
        self._pending = _Pending()
        self._wake = trio.Event()
        self._changed = trio.Event()

    @property
    def client_count(self) -> int:
        return len(self._clients)

    @asynccontextmanager
    async def subscribe(
        self, kinds: frozenset[str], station: str | None
    ) -> AsyncIterator[trio.MemoryReceiveChannel[bytes]]:
        send, receive = trio.open_memory_channel[bytes](self._client_queue)
        client = Client(kinds, station, send)
        self._clients.add(client)
        self._wake.set()
        try:
            yield receive
        finally:
            self._clients.discard(client)
            send.close()

    # ------------------------------------------------------------------ the hub's own tasks

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen while consoles are open (and ``idle_after`` longer), sleep otherwise."""
        task_status.started()
        while True:
            if not self._clients:
                self._wake = trio.Event()
                await self._wake.wait()
            async with trio.open_nursery() as nursery:
                await nursery.start(self._listen)
                nursery.start_soon(self._flush_loop)
                nursery.start_soon(self._watch_cluster)
                await self._until_idle()
                nursery.cancel_scope.cancel()

    async def _listen(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        def started() -> None:
            self._resync()  # whatever changed before LISTEN took effect: re-read once
            task_status.started()

        async def run_listener(*, task_status: trio.TaskStatus[None]) -> None:
            await self._db.listen(CHANNEL, self._on_notify, on_reconnect=self._resync, task_status=task_status)

        async with trio.open_nursery() as nursery:
            await nursery.start(run_listener)
            started()

    async def _until_idle(self) -> None:
        idle_since: float | None = None
        while True:
            await trio.sleep(min(1.0, self._idle_after))
            if self._clients:
                idle_since = None
            elif idle_since is None:
                idle_since = trio.current_time()
            elif trio.current_time() - idle_since >= self._idle_after:
                return

    def _on_notify(self, payload: str) -> None:
        kind, _, key = payload.partition(" ")
        self.note(kind, key)

    def note(self, kind: str, key: str = "") -> None:
        """Record one change (also for changes this process sees first-hand)."""
        pending = self._pending
        if pending.resync:
            return
        if len(pending.changes) >= self._max_pending:
            pending.resync, pending.changes = True, set()  # a flood: one "re-read everything" instead
        else:
            pending.changes.add((kind, key))
        self._changed.set()

    def _resync(self) -> None:
        self._pending = _Pending(resync=True)
        self._changed.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._changed.wait()
            self._changed = trio.Event()
            pending, self._pending = self._pending, _Pending()
            self.deliver(pending.changes, resync=pending.resync)
            await trio.sleep(self._flush_interval)

    def deliver(self, changes: set[tuple[str, str]], *, resync: bool = False) -> None:
        for client in list(self._clients):
            message: dict[str, Any]
            if resync:
                message = {"resync": True}
            else:
                wanted = [(kind, key) for kind, key in changes if client.wants(kind, key)]
                if not wanted:
                    continue
                message = {
                    "kinds": sorted({kind for kind, _ in wanted}),
                    "keys": sorted({key for _, key in wanted if key})[:100],
                }
            try:
                client.send.send_nowait(sse_frame("change", message))
            except trio.WouldBlock:
                self._drop(client)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._clients.discard(client)

    def _drop(self, client: Client) -> None:
        """A client whose queue is full is behind: cut it loose rather than buffer for it."""
        self._clients.discard(client)
        client.send.close()
        log.info("console client dropped: too slow", extra={"clients": len(self._clients)})

    async def _watch_cluster(self) -> None:
        last: Any = None
        while True:
            try:
                nodes = await self._coordinator.nodes()
                seen = (sorted(n.node_id for n in nodes), self._coordinator.leader_id)
                if last is not None and seen != last:
                    self.note("cluster")
                last = seen
            except Exception as exc:  # etcd down: the cluster page says so when it re-reads
                log.debug("cluster watch failed", extra={"error": str(exc)})
            await trio.sleep(self._cluster_poll)


def sse_frame(event: str, data: Any) -> bytes:
    """One Server-Sent Events message: ``event:`` and one ``data:`` line of JSON (which has no newlines)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def sse_stream(
    receive: trio.MemoryReceiveChannel[bytes], *, keepalive: float = 15.0, hello: dict[str, Any] | None = None
) -> AsyncIterator[bytes]:
    """The body of one SSE response: a retry hint and hello, then changes, comments as keep-alives while quiet,
    and a final ``dropped`` event if the hub cut the client loose."""
    yield b"retry: 2000\n\n" + sse_frame("hello", hello or {})
    async with receive:
        while True:
            with trio.move_on_after(keepalive):
                try:
                    frame = await receive.receive()
                except trio.EndOfChannel:
                    yield sse_frame("dropped", {"reason": "too slow"})
                    return
                yield frame
                continue
            yield b": keep-alive\n\n"
