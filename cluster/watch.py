"""A resumable etcd watch: one streaming POST /v3/watch, reopened from the last seen revision.

The stream breaking (etcd restarted, endpoint died) is routine and invisible to the consumer; only
compaction is surfaced (EtcdCompacted), because then events were lost and the consumer must re-read.
"""

from __future__ import annotations

import logging
from collections import deque
from contextlib import AsyncExitStack
from typing import Any

import httpx
import trio

from cluster.codec import as_int, b64, header_revision, prefix_range_end
from cluster.errors import EtcdCompacted, EtcdError, EtcdUnavailable
from cluster.results import WatchEvent
from cluster.transport import JsonLines, Transport, error_from_body

log = logging.getLogger(__name__)

_STREAM_ERRORS = (httpx.HTTPError, EOFError, EtcdUnavailable)


class Watch:
    """Async iterator of WatchEvent; use through ``EtcdClient.watch`` (an async context manager)."""

    def __init__(
        self,
        transport: Transport,
        key: bytes,
        *,
        prefix: bool,
        start_revision: int | None,
        prev_kv: bool,
        max_message_bytes: int = 16 * 1024 * 1024,
        max_backoff: float = 1.0,
    ) -> None:
        self._transport = transport
        self._key = key
        self._prefix = prefix
        self._prev_kv = prev_kv
        self._next_revision = start_revision  # None: "from now", fixed by the created message
        self._max_message = max_message_bytes
        self._max_backoff = max_backoff
        self._pending: deque[WatchEvent] = deque()
        self._stack: AsyncExitStack | None = None
        self._lines: JsonLines | None = None
        self._compacted: EtcdCompacted | None = None
        self.reconnects = 0

    def _create_request(self) -> dict[str, Any]:
        req: dict[str, Any] = {"key": b64(self._key)}
        if self._prefix:
            req["range_end"] = b64(prefix_range_end(self._key))
        if self._next_revision:
            req["start_revision"] = str(self._next_revision)
        if self._prev_kv:
            req["prev_kv"] = True
        return {"create_request": req}

    async def open(self) -> None:
        """Open the stream and wait until etcd confirms the watch (events after this are seen)."""
        await self._close_stream()
        stack = AsyncExitStack()
        try:
            with trio.fail_after(self._transport.timeout * 2):
                response = await stack.enter_async_context(self._transport.stream("/v3/watch", self._create_request()))
                lines = JsonLines(response, self._max_message)
                msg = await lines.next()
                self._handle(msg)  # raises on cancel/compaction
        except trio.TooSlowError:
            await stack.aclose()
            raise EtcdUnavailable("etcd watch: not confirmed before the deadline") from None
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        self._lines = lines

    async def _close_stream(self) -> None:
        stack, self._stack, self._lines = self._stack, None, None
        if stack is not None:
            with trio.CancelScope(shield=True):
                await stack.aclose()

    async def aclose(self) -> None:
        await self._close_stream()

    def _handle(self, msg: dict[str, Any]) -> None:
        if "error" in msg:
            raise error_from_body(msg, 200)
        result = msg.get("result", {})
        if result.get("canceled"):
            compact = as_int(result.get("compact_revision"))
            if compact:
                self._compacted = EtcdCompacted(
                    f"watch on {self._key!r} from revision {self._next_revision} was compacted "
                    f"(oldest available: {compact})",
                    compact_revision=compact,
                )
                raise self._compacted
            raise EtcdError(f"watch canceled by etcd: {result.get('cancel_reason', '?')}")
        if result.get("created") and self._next_revision is None:
            self._next_revision = header_revision(result) + 1
        for raw in result.get("events", []):
            event = WatchEvent.from_json(raw)
            self._pending.append(event)
            self._next_revision = event.kv.mod_revision + 1

    async def _reconnect(self) -> None:
        delay = 0.05
        while True:
            try:
                await self.open()
                self.reconnects += 1
                return
            except (EtcdUnavailable, httpx.HTTPError, EOFError) as exc:
                log.debug("watch %r: reconnect failed: %r", self._key, exc)
            except EtcdError as exc:
                if exc.code != 16 or self._transport.reauthenticate is None:
                    raise
                try:
                    await self._transport.reauthenticate()
                except EtcdError as auth_exc:
                    log.debug("watch %r: re-authentication failed: %r", self._key, auth_exc)
            await trio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> WatchEvent:
        while not self._pending:
            if self._compacted is not None:
                raise self._compacted
            if self._lines is None:
                await self._reconnect()
                continue
            try:
                msg = await self._lines.next()
            except _STREAM_ERRORS as exc:
                log.debug("watch %r: stream broke (%r); resuming at %s", self._key, exc, self._next_revision)
                await self._close_stream()
                continue
            try:
                self._handle(msg)
            except EtcdCompacted:
                await self._close_stream()
                raise
            except EtcdError as exc:
                log.debug("watch %r: %r; reopening", self._key, exc)
                await self._close_stream()
        return self._pending.popleft()
