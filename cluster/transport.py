"""HTTP plumbing for the etcd gateway: endpoint failover, deadlines, auth token, error mapping.

Every request is bounded by a trio deadline and is cancellable; connect failures move on to the next
endpoint, while requests that may have reached etcd are retried elsewhere only when idempotent (a
timed-out txn might have been applied, so it is reported, not replayed).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import orjson
import trio

from cluster.errors import EtcdCompacted, EtcdError, EtcdLeaseNotFound, EtcdUnavailable

log = logging.getLogger(__name__)

RequestHook = Callable[[str, float, bool], None]
"""Called after every unary request with (path, seconds, ok): the metrics seam."""

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MAYBE_SENT = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadTimeout)
_UNAUTHENTICATED = 16
_UNAVAILABLE_CODES = {4, 14}  # DEADLINE_EXCEEDED, UNAVAILABLE (no leader, leader changed, stopping)
# A range over every owner key (19,000 stations: 6 MB of JSON) takes ~190 ms to parse and convert; on the event
# loop that held every station's messages meanwhile. Answers this large are parsed in a worker thread.
OFF_LOOP_BYTES = 256 * 1024

T = TypeVar("T")


def _as_is(body: dict[str, Any]) -> dict[str, Any]:
    return body


def error_from_body(body: dict[str, Any], status: int) -> EtcdError:
    """Map the gateway's ``{"error", "code", "message"}`` (or a stream's ``{"error": {...}}``) to a type."""
    err = body.get("error")
    if isinstance(err, dict):  # streaming responses nest the status
        body = err
    message = str(body.get("message") or body.get("error") or f"HTTP {status}")
    code = body.get("code", body.get("grpc_code"))
    code = int(code) if code is not None else None
    if code in _UNAVAILABLE_CODES or status in (502, 503, 504):
        return EtcdUnavailable(message, code=code)
    if "compacted" in message:
        return EtcdCompacted(message, compact_revision=0)
    if "lease not found" in message:
        return EtcdLeaseNotFound(message, code=code)
    return EtcdError(message, code=code)


def make_ssl_context(ca_file: str | None, cert_file: str | None, key_file: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


class Transport:
    """Posts JSON to the first endpoint that answers; remembers which one did."""

    def __init__(
        self,
        endpoints: list[str],
        *,
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        on_request: RequestHook | None = None,
        max_connections: int = 100,
        max_body_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is required")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self._preferred = 0
        self._on_request = on_request
        self.token: str | None = None
        self.reauthenticate: Callable[[], Awaitable[None]] | None = None
        self._http = httpx.AsyncClient(
            # Deadlines come from trio scopes; httpx's own timeouts stay out of the way.
            timeout=httpx.Timeout(None),
            verify=ssl_context if ssl_context is not None else True,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=16),
            trust_env=False,
        )

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            await self._http.aclose()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": self.token} if self.token else {}

    def _order(self) -> list[int]:
        n = len(self.endpoints)
        return [(self._preferred + i) % n for i in range(n)]

    async def post(self, path: str, body: dict[str, Any], *, idempotent: bool = True) -> dict[str, Any]:
        """One unary call; raises EtcdUnavailable when no endpoint answered before the deadline."""
        return await self.post_as(path, body, _as_is, idempotent=idempotent)

    async def post_as(
        self, path: str, body: dict[str, Any], convert: Callable[[dict[str, Any]], T], *, idempotent: bool = True
    ) -> T:
        """``post`` whose answer goes through ``convert`` (e.g. into result objects): for a large answer, in a
        worker thread together with the parsing, so the event loop is not held meanwhile."""
        started = trio.current_time()
        ok = False
        try:
            result = await self._post_with_auth(path, body, idempotent, convert)
            ok = True
            return result
        except trio.TooSlowError:
            raise EtcdUnavailable(f"etcd {path}: deadline exceeded") from None
        finally:
            if self._on_request is not None:
                self._on_request(path, trio.current_time() - started, ok)

    async def _post_with_auth(
        self, path: str, body: dict[str, Any], idempotent: bool, convert: Callable[[dict[str, Any]], T]
    ) -> T:
        with trio.fail_after(self.timeout):
            try:
                return await self._post_failover(path, body, idempotent, convert)
            except EtcdError as exc:
                if exc.code != _UNAUTHENTICATED or self.reauthenticate is None:
                    raise
                # Simple tokens expire after idling; fetch a new one and replay once.
                await self.reauthenticate()
                return await self._post_failover(path, body, idempotent, convert)

    async def _post_failover(
        self, path: str, body: dict[str, Any], idempotent: bool, convert: Callable[[dict[str, Any]], T]
    ) -> T:
        content = orjson.dumps(body)
        order = self._order()
        last: Exception | None = None
        for tried, index in enumerate(order):
            url = self.endpoints[index] + path
            remaining = len(order) - tried
            # Give each untried endpoint a fair share of what is left, so one black hole
            # (a SIGSTOPped or partitioned etcd) cannot eat the whole deadline.
            deadline = trio.current_effective_deadline()
            # max(0): past the deadline (e.g. after a SIGSTOP) the scope is already cancelled; never negative.
            share = max(0.0, deadline - trio.current_time()) / remaining if deadline != float("inf") else 30.0
            with trio.move_on_after(share) as scope:
                try:
                    response = await self._http.post(url, content=content, headers=self._headers())
                except _NOT_SENT as exc:
                    last = exc
                    continue
                except _MAYBE_SENT as exc:
                    if not idempotent:
                        raise EtcdUnavailable(f"etcd {path} via {url}: {exc!r} (may have applied)") from exc
                    last = exc
                    continue
            if scope.cancelled_caught:
                if not idempotent:
                    raise EtcdUnavailable(f"etcd {path} via {url}: no answer (may have applied)")
                last = TimeoutError(f"no answer from {url}")
                continue
            raw = response.content
            if response.status_code == 200 and len(raw) > OFF_LOOP_BYTES:
                self._preferred = index
                return await trio.to_thread.run_sync(self._convert, raw, convert)
            parsed = self._parse(response)
            if response.status_code != 200:
                err = error_from_body(parsed, response.status_code)
                if isinstance(err, EtcdUnavailable) and idempotent:
                    last = err
                    continue
                raise err
            self._preferred = index
            return convert(parsed)
        raise EtcdUnavailable(f"etcd {path}: no endpoint answered ({last!r})")

    def _convert(self, raw: bytes, convert: Callable[[dict[str, Any]], T]) -> T:
        return convert(self._parse_bytes(raw))

    def _parse(self, response: httpx.Response) -> dict[str, Any]:
        return self._parse_bytes(response.content)

    def _parse_bytes(self, raw: bytes) -> dict[str, Any]:
        if len(raw) > self.max_body_bytes:
            raise EtcdError(f"etcd response too large ({len(raw)} bytes)")
        # Streaming calls (lease keepalive) answer one JSON line per message.
        first = raw.split(b"\n", 1)[0].strip() if raw else b"{}"
        try:
            parsed = orjson.loads(first or b"{}")
        except orjson.JSONDecodeError:
            return {"message": raw[:200].decode(errors="replace")}
        if not isinstance(parsed, dict):
            raise EtcdError(f"unexpected etcd response: {raw[:200]!r}")
        return parsed

    @asynccontextmanager
    async def stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        """Open a long-lived streaming POST (watch) on the first endpoint that accepts it."""
        content = orjson.dumps(body)
        last: Exception | None = None
        for index in self._order():
            url = self.endpoints[index] + path
            request = self._http.build_request("POST", url, content=content, headers=self._headers())
            response: httpx.Response | None = None
            with trio.move_on_after(self.timeout):
                try:
                    response = await self._http.send(request, stream=True)
                except (*_NOT_SENT, *_MAYBE_SENT) as exc:
                    last = exc
            if response is None:
                last = last or TimeoutError(f"no answer from {url}")
                continue
            try:
                if response.status_code != 200:
                    await response.aread()
                    err = error_from_body(self._parse(response), response.status_code)
                    if isinstance(err, EtcdUnavailable):
                        last = err
                        continue
                    raise err
                self._preferred = index
                yield response
                return
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(1):
                    await response.aclose()
        raise EtcdUnavailable(f"etcd {path}: no endpoint accepted the stream ({last!r})")


class JsonLines:
    """Reads newline-delimited JSON messages off a streaming response, with a size cap per message."""

    def __init__(self, response: httpx.Response, max_message_bytes: int) -> None:
        self._chunks = response.aiter_raw()
        self._buf = bytearray()
        self._max = max_message_bytes

    async def next(self) -> dict[str, Any]:
        """Next message; raises EOFError at the end of the stream."""
        while True:
            cut = self._buf.find(b"\n")
            if cut >= 0:
                line = bytes(self._buf[:cut]).strip()
                del self._buf[: cut + 1]
                if not line:
                    continue
                parsed = orjson.loads(line)
                if not isinstance(parsed, dict):
                    raise EtcdError(f"unexpected watch message: {line[:200]!r}")
                return parsed
            if len(self._buf) > self._max:
                raise EtcdError(f"watch message larger than {self._max} bytes")
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                raise EOFError("watch stream ended") from None
            self._buf += chunk
