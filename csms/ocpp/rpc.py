"""OCPP-J RPC over any message transport, trio-native.

One :class:`RpcSession` per station connection. ``serve()`` runs two tasks in its own nursery:

* the **reader** receives frames, answers CallResults/CallErrors to our own calls at once, and queues station
  Calls (and CallErrors for frames that break framing) into a bounded inbox. It never runs a handler, so the
  answer to one of our calls is never stuck behind a slow handler; when the inbox is full it waits
  (back-pressure on the station's socket);
* the **handler task** validates and handles the queued Calls one at a time, in arrival order, and sends
  exactly one CallResult or CallError for each, in the same order.

Our own calls (``call()``) run in the caller's task: at most one is outstanding per station (OCPP-J: a party
SHOULD NOT send a Call before the previous one is answered or timed out); later callers wait in FIFO order, at
most ``max_queued_calls`` of them. The ``timeout`` of a call covers its wait in that queue too, so an API
request that calls a station is bounded end to end.

``stop_reading()`` ends a session gently (drain, rebalancing, ownership moved): no new frame is read, every
Call already read (queued, being handled, or already buffered by the transport) is handled and answered in
order, then ``serve()`` returns and the owner closes the socket. A handler that raises AnswerWithheld ends the
session at once, leaving that call and every later one unanswered for the station to resend elsewhere.

Sends go through one lock, bounded by ``send_timeout`` and shielded from cancellation, so a timed-out caller
can never leave half a frame on the wire; a send that fails or times out ends the session (the peer is gone or
not reading).

Observer outcomes: ``on_incoming`` gets "ok" or the CallError code we answered; ``on_outgoing`` gets "ok", the
station's CallError code (unknown codes folded into GenericError), or one of "InvalidResponse", "Timeout",
"SessionClosed", "CallQueueFull", "InvalidRequest", "Cancelled". Actions a version does not know are reported
as "(unknown)" and framing errors as "(invalid)", so a misbehaving station cannot blow up metric label sets.
The incoming duration runs from the frame's arrival to our answer being sent (what the station waits).
"""

from __future__ import annotations

import itertools
import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from csms.ocpp.errors import (
    GENERIC_ERROR,
    INTERNAL_ERROR,
    NOT_IMPLEMENTED,
    NOT_SUPPORTED,
    AnswerWithheld,
    CallErrorReceived,
    CallQueueFull,
    InvalidResponse,
    OcppError,
    SessionClosed,
)
from csms.ocpp.frames import (
    CALL,
    UNKNOWN_ID,
    Call,
    CallError,
    CallResult,
    FrameError,
    encode,
    parse_frame,
    sniff_header,
)
from csms.ocpp.schemas import Validator

log = logging.getLogger(__name__)

UNKNOWN_ACTION = "(unknown)"
INVALID_FRAME = "(invalid)"


class MessageTransport(Protocol):
    """One WebSocket connection, or anything that moves whole text messages."""

    async def send(self, text: str) -> None: ...

    async def receive(self) -> str | bytes:
        """Next message; raises (any exception) when the connection is closed, which ends ``serve()``."""
        ...

    def buffered(self) -> list[str | bytes]:
        """The messages already received but not yet returned by ``receive``, taken now without waiting."""
        ...


CallHandler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""Handles a station's Call: (action, payload) -> response payload; raise OcppError to answer a CallError."""


class RpcObserver(Protocol):
    def on_incoming(self, action: str, outcome: str, seconds: float) -> None: ...

    def on_outgoing(self, action: str, outcome: str, seconds: float) -> None: ...


@dataclass(slots=True)
class _Outstanding:
    unique_id: str
    action: str
    done: trio.Event = field(default_factory=trio.Event)
    payload: dict[str, Any] | None = None
    error: Exception | None = None


# An inbox item: (arrival time, station Call or a ready CallError answering a broken frame).
_Inbox = tuple[float, Call | CallError]


class RpcSession:
    def __init__(
        self,
        transport: MessageTransport,
        handler: CallHandler,
        validator: Validator,
        *,
        call_timeout: float = 30.0,
        max_queued_calls: int = 16,
        max_frame_bytes: int = 65536,
        max_inbox: int = 32,
        observer: RpcObserver | None = None,
        handler_timeout: float | None = 60.0,
        send_timeout: float = 10.0,
        label: str = "",
    ) -> None:
        """``handler_timeout`` bounds one handler run (None: unbounded); on expiry the station gets
        InternalError. ``label`` (e.g. the station id) prefixes log lines."""
        self._transport = transport
        self._handler = handler
        self._validator = validator
        self._codes = validator.codes
        self._call_timeout = call_timeout
        self._max_queued_calls = max_queued_calls
        self._max_frame_bytes = max_frame_bytes
        self._max_inbox = max_inbox
        self._observer = observer
        self._handler_timeout = math.inf if handler_timeout is None else handler_timeout
        self._send_timeout = send_timeout
        self._label = label or "rpc"

        self._send_lock = trio.Lock()
        self._call_lock = trio.Lock()  # FIFO: trio.Lock is fair
        self._outstanding: _Outstanding | None = None
        self._call_scopes: set[trio.CancelScope] = set()
        self._serve_scope: trio.CancelScope | None = None
        self._read_scope: trio.CancelScope | None = None
        self._leftover: list[str | bytes] = []  # read by the transport before stop_reading(): still answered
        self._started = False
        self._stopping = False
        self._closed = False
        self._station_left = False  # the station closed the connection or stopped taking our frames
        self._ids = itertools.count(1)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def station_left(self) -> bool:
        """The station closed the connection (or stopped taking our frames), rather than this side closing it."""
        return self._station_left

    @property
    def version(self) -> str:
        return self._validator.version

    # ------------------------------------------------------------------ serving

    async def serve(self) -> None:
        """Run until the transport closes (its ``receive`` raises), a send fails, or ``stop_reading()`` and every
        call read before it is answered; then fail waiting callers with SessionClosed. Cancelling the
        surrounding scope also ends it (at once)."""
        if self._started:
            raise RuntimeError("RpcSession.serve() may only run once")
        self._started = True
        if self._closed:
            return
        send_inbox, receive_inbox = trio.open_memory_channel[_Inbox](self._max_inbox)
        try:
            async with trio.open_nursery() as nursery:
                self._serve_scope = nursery.cancel_scope
                nursery.start_soon(self._handle_loop, receive_inbox)
                await self._read_loop(send_inbox)
                if self._station_left:
                    nursery.cancel_scope.cancel()  # nobody to answer; the station resends what it misses
                # else stop_reading(): the handler task answers what the inbox holds, then the inbox ends
        finally:
            self._close()

    def stop_reading(self) -> None:
        """Begin a gentle end: read no new frame, answer every Call read so far, then let ``serve()`` return.

        Frames the transport already holds were received by this replica, so they count as read. The caller
        bounds how long this may take by cancelling ``serve()`` when its patience runs out."""
        if self._stopping or self._closed:
            return
        self._stopping = True
        self._leftover = self._transport.buffered()
        if self._read_scope is not None:
            self._read_scope.cancel()

    def _close(self) -> None:
        """Idempotent: mark closed, stop serving, fail every waiting caller with SessionClosed."""
        self._closed = True
        if self._serve_scope is not None:
            self._serve_scope.cancel()
        for scope in self._call_scopes:
            scope.cancel()

    async def _read_loop(self, inbox: trio.MemorySendChannel[_Inbox]) -> None:
        """Queue frames until the transport closes or stop_reading(); closing the inbox ends the handler task."""
        async with inbox:
            pending: _Inbox | None = None
            with trio.CancelScope() as self._read_scope:
                if self._stopping:
                    self._read_scope.cancel()
                while True:
                    try:
                        raw = await self._transport.receive()
                    except Exception as exc:
                        log.debug("transport closed", extra=self._ctx(error=repr(exc)))
                        self._station_left = True
                        return
                    pending = self._routed(raw)
                    if pending is not None:
                        await inbox.send(pending)  # waits while the inbox is full: back-pressure
                        pending = None
            # stop_reading(): a frame cut off mid-queueing (memory channel sends are cancel-safe), then the
            # frames the transport had already received, in arrival order.
            if pending is not None:
                await inbox.send(pending)
            for raw in self._leftover:
                item = self._routed(raw)
                if item is not None:
                    await inbox.send(item)

    def _routed(self, raw: str | bytes) -> _Inbox | None:
        item = self._route(raw)
        return None if item is None else (trio.current_time(), item)

    def _route(self, raw: str | bytes) -> Call | CallError | None:
        """Answer responses to our calls now; return what the handler task must answer, if anything."""
        if _frame_size(raw, self._max_frame_bytes) > self._max_frame_bytes:
            return self._oversized(raw)
        try:
            frame = parse_frame(raw, self._validator.version)
        except FrameError as exc:
            return self._broken_frame(exc)
        if isinstance(frame, Call):
            return frame
        self._deliver(frame)
        return None

    def _oversized(self, raw: str | bytes) -> CallError | None:
        type_id, unique_id = sniff_header(raw)
        description = f"message exceeds {self._max_frame_bytes} bytes"
        if type_id is not None and type_id != CALL:
            log.warning("dropped oversized response frame", extra=self._ctx(message_id=unique_id, message_type=type_id))
            if unique_id is not None:
                self._fail_outstanding(unique_id, InvalidResponse(self._codes.format_violation, description))
            return None
        log.warning("oversized frame refused", extra=self._ctx(message_id=unique_id))
        return CallError(unique_id or UNKNOWN_ID, self._codes.format_violation, description)

    def _broken_frame(self, exc: FrameError) -> CallError | None:
        if exc.reply:
            log.warning(
                "invalid frame answered with a CallError",
                extra=self._ctx(message_id=exc.unique_id, code=exc.code, error=exc.description),
            )
            return exc.to_call_error()
        log.warning("dropped invalid response frame", extra=self._ctx(message_id=exc.unique_id, error=exc.description))
        self._fail_outstanding(exc.unique_id, InvalidResponse(exc.code, exc.description))
        return None

    def _deliver(self, frame: CallResult | CallError) -> None:
        out = self._outstanding
        if out is None or out.unique_id != frame.unique_id or out.done.is_set():
            log.warning("ignored response with unknown or stale id", extra=self._ctx(message_id=frame.unique_id))
            return
        if isinstance(frame, CallResult):
            out.payload = frame.payload
        else:
            out.error = CallErrorReceived(frame.code, frame.description, frame.details)
        out.done.set()

    def _fail_outstanding(self, unique_id: str, error: Exception) -> None:
        out = self._outstanding
        if out is not None and out.unique_id == unique_id and not out.done.is_set():
            out.error = error
            out.done.set()

    async def _handle_loop(self, inbox: trio.MemoryReceiveChannel[_Inbox]) -> None:
        async for received_at, item in inbox:
            reply: CallResult | CallError
            if isinstance(item, CallError):
                reply, action, outcome = item, INVALID_FRAME, item.code
            else:
                try:
                    reply, action, outcome = await self._dispatch(item)
                except AnswerWithheld as exc:
                    log.info(
                        "call left unanswered; session ends",
                        extra=self._ctx(message_id=item.unique_id, action=item.action, reason=str(exc)),
                    )
                    self._close()
                    return
            try:
                text = encode(reply)
            except TypeError as exc:  # e.g. a non-str key in a free-form customData object
                log.error(
                    "response is not JSON-serialisable",
                    extra=self._ctx(message_id=item.unique_id, action=action, error=str(exc)),
                )
                reply, outcome = self._internal_error(item.unique_id), INTERNAL_ERROR
                text = encode(reply)
            try:
                await self._send(text)
            except SessionClosed:
                return
            self._observe_incoming(action, outcome, trio.current_time() - received_at)

    async def _dispatch(self, call: Call) -> tuple[CallResult | CallError, str, str]:
        """Validate and handle one station Call; returns (answer, action label, outcome)."""
        validator, action = self._validator, call.action
        if not validator.knows(action):
            return (
                self._error(call, NOT_IMPLEMENTED, f"unknown action {action!r}"),
                UNKNOWN_ACTION,
                NOT_IMPLEMENTED,
            )
        if action not in validator.station_actions:
            description = f"{action} is not an action a station sends to a CSMS"
            return self._error(call, NOT_SUPPORTED, description), action, NOT_SUPPORTED
        try:
            validator.validate_request(action, call.payload)
            # A bare scope, not fail_after: this runs once per message and the context manager costs more.
            with trio.CancelScope(deadline=trio.current_time() + self._handler_timeout) as scope:
                response = await self._handler(action, call.payload)
            if scope.cancelled_caught:
                raise trio.TooSlowError
        except OcppError as exc:
            return CallError(call.unique_id, exc.code, exc.description, exc.details), action, exc.code
        except AnswerWithheld:
            raise
        except trio.TooSlowError:
            log.error(
                "handler timed out",
                extra=self._ctx(message_id=call.unique_id, action=action, seconds=self._handler_timeout),
            )
            return self._internal_error(call.unique_id), action, INTERNAL_ERROR
        except Exception:
            log.exception("handler failed", extra=self._ctx(message_id=call.unique_id, action=action))
            return self._internal_error(call.unique_id), action, INTERNAL_ERROR
        try:
            validator.validate_response(action, response)
        except OcppError as exc:
            log.error(
                "handler returned an invalid response",
                extra=self._ctx(message_id=call.unique_id, action=action, error=exc.description),
            )
            return self._internal_error(call.unique_id), action, INTERNAL_ERROR
        return CallResult(call.unique_id, response), action, "ok"

    @staticmethod
    def _error(call: Call, code: str, description: str) -> CallError:
        return CallError(call.unique_id, code, description, {})

    @staticmethod
    def _internal_error(unique_id: str) -> CallError:
        return CallError(unique_id, INTERNAL_ERROR, "an internal error occurred while handling the request", {})

    async def _send(self, text: str) -> None:
        """Send one whole message or end the session: raises SessionClosed if the transport is unusable."""
        if self._closed:
            raise SessionClosed("session is closed")
        lock = self._send_lock
        try:
            lock.acquire_nowait()  # free, as it nearly always is: no trip through the scheduler before sending
        except trio.WouldBlock:
            await lock.acquire()
        failure: BaseException | None = None
        try:
            # One shielded scope with its own deadline (its deadline still applies under the shield).
            with trio.CancelScope(deadline=trio.current_time() + self._send_timeout, shield=True) as scope:
                try:
                    await self._transport.send(text)
                except Exception as exc:
                    failure = exc
            if scope.cancelled_caught and failure is None:
                failure = trio.TooSlowError()
        finally:
            lock.release()
        if failure is not None:
            log.warning("send failed, closing session", extra=self._ctx(error=repr(failure)))
            self._station_left = True
            self._close()
            raise SessionClosed("send failed", by_station=True) from failure

    # ------------------------------------------------------------------ our calls

    async def call(
        self,
        action: str,
        payload: dict[str, Any],
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send a Call to the station and return its CallResult payload (validated against the schema).

        Raises OcppError (bad action or payload: our bug, nothing sent), CallQueueFull,
        trio.TooSlowError (after ``timeout``, default ``call_timeout``, counted from this call, queueing
        included), CallErrorReceived, InvalidResponse, or SessionClosed.
        """
        started = trio.current_time()
        label = action if self._validator.knows(action) else UNKNOWN_ACTION
        outcome = "Cancelled"
        try:
            result = await self._call(action, payload, self._call_timeout if timeout is None else timeout)
            outcome = "ok"
            return result
        except CallErrorReceived as exc:
            outcome = exc.code if exc.code in self._codes.valid else GENERIC_ERROR
            raise
        except InvalidResponse:
            outcome = "InvalidResponse"
            raise
        except OcppError:
            outcome = "InvalidRequest"
            raise
        except trio.TooSlowError:
            outcome = "Timeout"
            raise
        except SessionClosed:
            outcome = "SessionClosed"
            raise
        except CallQueueFull:
            outcome = "CallQueueFull"
            raise
        finally:
            self._observe_outgoing(label, outcome, trio.current_time() - started)

    async def _call(self, action: str, payload: dict[str, Any], seconds: float) -> dict[str, Any]:
        if self._closed or self._stopping:
            raise SessionClosed("session is closed" if self._closed else "session is closing")
        if action not in self._validator.csms_actions:
            code = NOT_SUPPORTED if self._validator.knows(action) else NOT_IMPLEMENTED
            raise OcppError(code, f"{action!r} is not an action a CSMS sends to a station")
        self._validator.validate_request(action, payload)
        waiting = self._call_lock.statistics().tasks_waiting  # parked callers only, exact at hand-off
        if self._call_lock.locked() and waiting >= self._max_queued_calls:
            raise CallQueueFull(f"{waiting} calls already wait for this station")
        with trio.fail_after(seconds), trio.CancelScope() as scope:
            self._call_scopes.add(scope)
            try:
                await self._call_lock.acquire()
                try:
                    return await self._exchange(action, payload)
                finally:
                    self._call_lock.release()
            finally:
                self._call_scopes.discard(scope)
        # Only reached when _close() cancelled the scope.
        if self._station_left:
            raise SessionClosed("the station disconnected before answering", by_station=True)
        raise SessionClosed("session closed before the station answered")

    async def _exchange(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        out = _Outstanding(self._next_id(), action)
        self._outstanding = out
        try:
            await self._send(encode(Call(out.unique_id, action, payload)))
            await out.done.wait()
        finally:
            self._outstanding = None
        if out.error is not None:
            raise out.error
        assert out.payload is not None
        try:
            self._validator.validate_response(action, out.payload)
        except OcppError as exc:
            raise InvalidResponse(exc.code, exc.description, exc.details) from None
        return out.payload

    def _ctx(self, **fields: object) -> dict[str, object]:
        """Structured log context: the station (label) plus per-event fields such as message_id and action."""
        return {"station_id": self._label, **fields}

    def _next_id(self) -> str:
        """Short and unique per session; the random part keeps the ids of successive sessions apart."""
        return f"{next(self._ids)}-{secrets.token_hex(4)}"

    # ------------------------------------------------------------------ observation

    def _observe_incoming(self, action: str, outcome: str, seconds: float) -> None:
        if self._observer is not None:
            try:
                self._observer.on_incoming(action, outcome, seconds)
            except Exception:
                log.exception("observer failed", extra=self._ctx())

    def _observe_outgoing(self, action: str, outcome: str, seconds: float) -> None:
        if self._observer is not None:
            try:
                self._observer.on_outgoing(action, outcome, seconds)
            except Exception:
                log.exception("observer failed", extra=self._ctx())


def _frame_size(raw: str | bytes, limit: int) -> int:
    """Size in bytes as sent (UTF-8), without encoding the common short frame."""
    if isinstance(raw, bytes) or len(raw) * 4 <= limit:
        return len(raw)
    return len(raw.encode("utf-8", "surrogatepass")) if len(raw) <= limit else len(raw)
