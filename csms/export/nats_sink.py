"""NATS JetStream sink: nats-py (an asyncio client) on a plain asyncio loop in a thread of its own.

Not on trio-asyncio like asyncpg: measured, the exporter spent ~180 us of CPU per event there (trio-asyncio
runs every asyncio callback as a trio step, and nats-py makes several per message: a future per ack, the
flusher, the reader), against ~30 us on a native loop. The bridge is one ``run_coroutine_threadsafe`` per batch;
a trio cancellation cancels the batch's coroutine on the loop, and every wait is bounded.

Subjects are ``<prefix>.<type>.<station>`` (the station id made a single subject token), so consumers filter
by type and station with wildcards. The event id is the ``Nats-Msg-Id``: JetStream drops a re-publish of the
same event within the stream's duplicate window, which is what turns the exporter's at-least-once (a failover
re-sends from the durable cursor) into effectively-once in the stream. One trio->asyncio crossing per batch:
the batch's publishes go out in order on one connection and their acks are awaited together.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import nats
import orjson
import trio
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError

from csms.export.sink import CloudEvent, DeliveryFailed

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def subject_for(prefix: str, event: CloudEvent) -> str:
    event_type = str(event["type"]).removeprefix("csms.")
    station = _UNSAFE.sub("_", str(event.get("subject") or "_")) or "_"
    return f"{prefix}.{event_type}.{station}"


class NatsSink:
    def __init__(self, loop: asyncio.AbstractEventLoop, url: str, *, stream: str, prefix: str, timeout: float) -> None:
        self.name = f"nats:{stream}"
        self._loop = loop
        self._url = url
        self._stream = stream
        self._prefix = prefix
        self._timeout = timeout
        self._nc: Any = None
        self._js: Any = None

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, *, stream: str, prefix: str, timeout: float = 5.0) -> AsyncIterator[NatsSink]:
        """The client on a plain asyncio loop in its own thread (see the module docstring for why)."""
        loop = asyncio.SelectorEventLoop()  # not new_event_loop(): trio-asyncio's policy refuses in trio
        thread = threading.Thread(target=loop.run_forever, name="nats-sink", daemon=True)
        thread.start()
        sink = cls(loop, url, stream=stream, prefix=prefix, timeout=timeout)
        try:
            yield sink
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(timeout):
                await sink._run(sink._close)
            loop.call_soon_threadsafe(loop.stop)
            await trio.to_thread.run_sync(thread.join, timeout)
            if not thread.is_alive():
                loop.close()

    async def deliver(self, events: list[CloudEvent]) -> None:
        await self._run(self._publish, events)

    async def _run(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the client's loop; a trio cancellation cancels it there too (bounded wait)."""
        future = asyncio.run_coroutine_threadsafe(fn(*args), self._loop)
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()
        future.add_done_callback(lambda _: token.run_sync_soon(done.set))
        try:
            with trio.fail_after(self._timeout * 2):
                await done.wait()
        except trio.TooSlowError:
            future.cancel()
            raise DeliveryFailed(f"JetStream did not acknowledge within {self._timeout * 2}s") from None
        except BaseException:
            future.cancel()
            raise
        try:
            return future.result()
        except DeliveryFailed:
            raise
        except Exception as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc

    # -- asyncio side ---------------------------------------------------------------------------------------

    async def _connect(self) -> None:
        if self._nc is not None and self._nc.is_connected:
            return
        await self._close()
        self._nc = await nats.connect(
            self._url, connect_timeout=self._timeout, max_reconnect_attempts=2, allow_reconnect=True
        )
        self._js = self._nc.jetstream(timeout=self._timeout)
        config = StreamConfig(name=self._stream, subjects=[f"{self._prefix}.>"], duplicate_window=120.0)
        try:
            await self._js.add_stream(config)
        except BadRequestError:
            await self._js.update_stream(config)  # exists with another config: make ours current

    async def _publish(self, events: list[CloudEvent]) -> None:
        await self._connect()
        # Sent one after another on one connection (JetStream stores them in that order), acks awaited together.
        acks = [
            await self._js.publish_async(
                subject_for(self._prefix, e),
                orjson.dumps(e),
                stream=self._stream,
                headers={"Nats-Msg-Id": e["id"], "Ce-Type": e["type"], "Ce-Sequence": e["sequence"]},
            )
            for e in events
        ]
        results = await asyncio.gather(*acks, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise DeliveryFailed(f"{len(failed)} of {len(events)} not acknowledged: {failed[0]!r}")

    async def _close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            with contextlib.suppress(Exception):  # closing a broken connection: nothing left to do
                await nc.close()
