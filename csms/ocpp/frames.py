"""OCPP-J message frames: parse a WebSocket text message into a Call, CallResult or CallError, and back.

Rules (OCPP-J 1.6 section 4; OCPP 2.0.1 part 4 "OCPP-J", sections 4.1-4.3):

* A frame is a JSON array ``[MessageTypeId, UniqueId, ...]``: ``[2, id, action, {payload}]`` (Call),
  ``[3, id, {payload}]`` (CallResult), ``[4, id, errorCode, errorDescription, {errorDetails}]`` (CallError).
  The unique id is a string of at most 36 characters.
* A CallError only ever answers a Call. So a malformed CallResult/CallError is never answered: it is reported
  with ``FrameError.reply = False`` and the caller logs and drops it (and may fail its own pending call).
* A frame whose message id cannot be read (not JSON, not an array, id missing or not a string) is answered
  with a CallError whose id is ``"-1"``: 2.0.1 prescribes this (RpcFrameworkError); 1.6 says nothing, and
  answering with FormationViolation / "-1" beats silence because a station waiting on a garbled call then
  fails fast instead of timing out.
* An over-long id (> 36 characters) is echoed back in the CallError: the station made it, so it can match it.
* Binary (bytes) frames are parsed like text: OCPP-J says "text", but refusing a well-formed call for its
  WebSocket opcode would help nobody.
* JSON that orjson refuses but the grammar allows (RFC 8259: an unpaired surrogate escape such as
  ``"\ud800"``, an integer beyond 64 bits) is parsed again by the standard library, so the Call's id can be
  echoed and the offending field named (the receiver's domain check refuses such values). An id that holds an
  unpaired surrogate is answered with an error that echoes it (escaped: ``"\ud800"`` in the JSON text).

Which code a fault gets depends on the version (see :class:`ErrorCodes`): a frame that is not a valid RPC
message is FormationViolation in 1.6 and RpcFrameworkError in 2.0.1; an unknown message type id is
FormationViolation in 1.6 and MessageTypeNotSupported in 2.0.1; a payload that is not a JSON object is
FormationViolation in 1.6 and FormatViolation in 2.0.1.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from csms.ocpp.errors import ErrorCodes, error_codes

CALL = 2
CALL_RESULT = 3
CALL_ERROR = 4

UNKNOWN_ID = "-1"
MAX_ID_LENGTH = 36
MAX_DESCRIPTION_LENGTH = 255  # 2.0.1 errorDescription maxLength; 1.6 sets none, so one limit fits both


@dataclass(frozen=True, slots=True)
class Call:
    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallResult:
    unique_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallError:
    unique_id: str
    code: str
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)


Frame = Call | CallResult | CallError


class FrameError(Exception):
    """A frame that breaks OCPP-J framing.

    ``unique_id`` is the best-known message id ("-1" when unreadable), ``code`` the CallError code for the
    version, ``message_type`` the type id when it could be read, and ``reply`` whether the frame deserves a
    CallError answer (only Calls and unreadable frames do).
    """

    def __init__(self, unique_id: str, code: str, description: str, message_type: int | None, reply: bool) -> None:
        super().__init__(f"{code}: {description}")
        self.unique_id = unique_id
        self.code = code
        self.description = description
        self.message_type = message_type
        self.reply = reply

    def to_call_error(self) -> CallError:
        return CallError(self.unique_id, self.code, self.description, {})


def parse_frame(raw: str | bytes, version: str) -> Frame:
    """Parse one WebSocket message; raise :class:`FrameError` if it is not a valid OCPP-J frame."""
    codes = error_codes(version)
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        msg = _loads_lenient(raw, codes)
    if not isinstance(msg, list):
        raise FrameError(UNKNOWN_ID, codes.rpc_framework_error, "message is not a JSON array", None, True)
    if len(msg) < 2:
        raise FrameError(UNKNOWN_ID, codes.rpc_framework_error, "message lacks MessageTypeId or UniqueId", None, True)
    type_id, unique_id = msg[0], msg[1]
    if not isinstance(unique_id, str) or not unique_id:
        # Without an id the answer cannot be correlated, whatever the message type was.
        known_type = type_id if _is_int(type_id) else None
        reply = known_type not in (CALL_RESULT, CALL_ERROR)
        raise FrameError(UNKNOWN_ID, codes.rpc_framework_error, "UniqueId is not a non-empty string", known_type, reply)
    if not _is_int(type_id):
        raise FrameError(unique_id, codes.rpc_framework_error, "MessageTypeId is not an integer", None, True)
    if not _is_unicode(unique_id):
        reply = type_id not in (CALL_RESULT, CALL_ERROR)
        description = "UniqueId is not Unicode text (unpaired surrogate)"
        raise FrameError(unique_id, codes.rpc_framework_error, description, type_id, reply)
    if type_id == CALL:
        return _parse_call(msg, unique_id, codes)
    if type_id == CALL_RESULT:
        return _parse_call_result(msg, unique_id, codes)
    if type_id == CALL_ERROR:
        return _parse_call_error(msg, unique_id, codes)
    raise FrameError(
        unique_id,
        codes.message_type_not_supported,
        f"MessageTypeId {type_id} is not supported",
        type_id,
        True,
    )


def _loads_lenient(raw: str | bytes, codes: ErrorCodes) -> Any:
    """The standard library's parser, minus its extensions (NaN, Infinity): valid JSON only."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    try:
        return json.loads(raw, parse_constant=refuse)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise FrameError(UNKNOWN_ID, codes.rpc_framework_error, "message is not valid JSON", None, True) from None


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_id_length(unique_id: str, codes: ErrorCodes, type_id: int) -> None:
    if len(unique_id) > MAX_ID_LENGTH:
        raise FrameError(
            unique_id,
            codes.rpc_framework_error,
            f"UniqueId is longer than {MAX_ID_LENGTH} characters",
            type_id,
            type_id == CALL,
        )


def _parse_call(msg: list[Any], unique_id: str, codes: ErrorCodes) -> Call:
    _check_id_length(unique_id, codes, CALL)
    if len(msg) != 4:
        raise FrameError(unique_id, codes.rpc_framework_error, "a Call must have 4 elements", CALL, True)
    action, payload = msg[2], msg[3]
    if not isinstance(action, str) or not action:
        raise FrameError(unique_id, codes.rpc_framework_error, "Action is not a non-empty string", CALL, True)
    if not isinstance(payload, dict):
        raise FrameError(unique_id, codes.format_violation, "payload is not a JSON object", CALL, True)
    return Call(unique_id, action, payload)


def _parse_call_result(msg: list[Any], unique_id: str, codes: ErrorCodes) -> CallResult:
    _check_id_length(unique_id, codes, CALL_RESULT)
    if len(msg) != 3:
        raise FrameError(unique_id, codes.rpc_framework_error, "a CallResult must have 3 elements", CALL_RESULT, False)
    payload = msg[2]
    if not isinstance(payload, dict):
        raise FrameError(unique_id, codes.format_violation, "payload is not a JSON object", CALL_RESULT, False)
    return CallResult(unique_id, payload)


def _parse_call_error(msg: list[Any], unique_id: str, codes: ErrorCodes) -> CallError:
    """Strict on what identifies the error, lenient on the rest: a station's slightly malformed CallError
    (missing or null details, a non-string description) still tells our caller what went wrong."""
    _check_id_length(unique_id, codes, CALL_ERROR)
    if len(msg) not in (4, 5):
        raise FrameError(unique_id, codes.rpc_framework_error, "a CallError must have 5 elements", CALL_ERROR, False)
    code = msg[2]
    if not isinstance(code, str) or not code:
        raise FrameError(unique_id, codes.rpc_framework_error, "errorCode is not a string", CALL_ERROR, False)
    description = msg[3] if isinstance(msg[3], str) else ("" if msg[3] is None else str(msg[3]))
    details: Any = msg[4] if len(msg) == 5 else None
    if details is None:
        details = {}
    elif not isinstance(details, dict):
        details = {"value": details}
    return CallError(unique_id, code, description, details)


def encode(frame: Frame) -> str:
    """Serialise a frame as compact JSON text (raises TypeError for payloads that are not JSON-able)."""
    if isinstance(frame, Call):
        msg: list[Any] = [CALL, frame.unique_id, frame.action, frame.payload]
    elif isinstance(frame, CallResult):
        msg = [CALL_RESULT, frame.unique_id, frame.payload]
    else:
        msg = [
            CALL_ERROR,
            frame.unique_id,
            frame.code,
            frame.description[:MAX_DESCRIPTION_LENGTH],
            frame.details,
        ]
    try:
        return orjson.dumps(msg).decode()
    except orjson.JSONEncodeError:
        if not isinstance(frame, CallError):
            raise
        # Echoing a station's unpaired surrogate (in its id or a field name): escaped, the text stays valid JSON.
        return json.dumps(msg, ensure_ascii=True, separators=(",", ":"))


_HEADER = re.compile(r'\s*\[\s*(\d)\s*,\s*"([^"\\]{1,36})"')


def sniff_header(raw: str | bytes) -> tuple[int | None, str | None]:
    """Cheaply read (MessageTypeId, UniqueId) from the start of a frame without parsing it all.

    For frames too large to parse: the answer to an oversized Call can then still carry its id.
    """
    head = raw[:128]
    text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
    m = _HEADER.match(text)
    if m is None:
        return None, None
    return int(m.group(1)), m.group(2)
