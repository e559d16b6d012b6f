"""OCPP-J error codes and the exceptions the RPC layer raises.

OCPP 1.6 and 2.0.1 spell some CallError codes differently (1.6 keeps the typos its errata declared "will not
fix": ``FormationViolation``, ``OccurenceConstraintViolation``) and 2.0.1 adds codes for RPC-level faults.
Code that builds a CallError for a station picks the spelling through :func:`error_codes`, so one code path
serves both versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUPPORTED_VERSIONS: tuple[str, ...] = ("1.6", "2.0.1")

# Codes common to OCPP-J 1.6 (section 4.2.3) and 2.0.1 (part 4, section 4.3).
NOT_IMPLEMENTED = "NotImplemented"  # requested Action is not known by the receiver
NOT_SUPPORTED = "NotSupported"  # Action is recognised but not supported by the receiver
INTERNAL_ERROR = "InternalError"
PROTOCOL_ERROR = "ProtocolError"  # payload for Action is incomplete
SECURITY_ERROR = "SecurityError"
PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
GENERIC_ERROR = "GenericError"

# OCPP 1.6 only (spelled as in the 1.6 specification).
FORMATION_VIOLATION = "FormationViolation"
OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"

# OCPP 2.0.1 only.
FORMAT_VIOLATION = "FormatViolation"
OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
RPC_FRAMEWORK_ERROR = "RpcFrameworkError"  # not a valid RPC request, e.g. the message id cannot be read
MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"

_COMMON = frozenset(
    {
        NOT_IMPLEMENTED,
        NOT_SUPPORTED,
        INTERNAL_ERROR,
        PROTOCOL_ERROR,
        SECURITY_ERROR,
        PROPERTY_CONSTRAINT_VIOLATION,
        TYPE_CONSTRAINT_VIOLATION,
        GENERIC_ERROR,
    }
)


@dataclass(frozen=True, slots=True)
class ErrorCodes:
    """The version-dependent CallError codes, by meaning.

    1.6 has no RpcFrameworkError or MessageTypeNotSupported: there a frame that is not a valid RPC message at
    all is a ``FormationViolation`` ("not conform the PDU structure").
    """

    version: str
    format_violation: str  # payload syntactically wrong / extra properties
    occurrence_violation: str  # required field missing, too few / many items
    rpc_framework_error: str  # frame is not a valid RPC message (no readable id, wrong arity, ...)
    message_type_not_supported: str  # message type id not one we know
    valid: frozenset[str]  # every code the version defines (to tame a peer's unknown codes)


_TABLE: dict[str, ErrorCodes] = {
    "1.6": ErrorCodes(
        version="1.6",
        format_violation=FORMATION_VIOLATION,
        occurrence_violation=OCCURENCE_CONSTRAINT_VIOLATION,
        rpc_framework_error=FORMATION_VIOLATION,
        message_type_not_supported=FORMATION_VIOLATION,
        valid=_COMMON | {FORMATION_VIOLATION, OCCURENCE_CONSTRAINT_VIOLATION},
    ),
    "2.0.1": ErrorCodes(
        version="2.0.1",
        format_violation=FORMAT_VIOLATION,
        occurrence_violation=OCCURRENCE_CONSTRAINT_VIOLATION,
        rpc_framework_error=RPC_FRAMEWORK_ERROR,
        message_type_not_supported=MESSAGE_TYPE_NOT_SUPPORTED,
        valid=_COMMON
        | {
            FORMAT_VIOLATION,
            OCCURRENCE_CONSTRAINT_VIOLATION,
            RPC_FRAMEWORK_ERROR,
            MESSAGE_TYPE_NOT_SUPPORTED,
        },
    ),
}


def error_codes(version: str) -> ErrorCodes:
    """The CallError code table of an OCPP version ("1.6" or "2.0.1")."""
    try:
        return _TABLE[version]
    except KeyError:
        raise ValueError(f"unsupported OCPP version {version!r}; expected one of {SUPPORTED_VERSIONS}") from None


class OcppError(Exception):
    """Raise from a Call handler to answer the station with a CallError instead of a CallResult."""

    def __init__(self, code: str, description: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.details: dict[str, Any] = details if details is not None else {}


class InvalidResponse(OcppError):
    """The station answered one of OUR calls with a payload that breaks the response schema."""


class CallErrorReceived(Exception):
    """The station answered one of OUR calls with a CallError."""

    def __init__(self, code: str, description: str, details: dict[str, Any]) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.details = details


class SessionClosed(Exception):
    """The RPC session ended (connection closed) before our call got an answer, or before it was made.

    ``by_station``: the station ended it (closed or dropped the connection, or stopped taking our frames), as
    opposed to this side closing it (drain, rebalancing, ownership moved, shutdown)."""

    def __init__(self, message: str, *, by_station: bool = False) -> None:
        super().__init__(message)
        self.by_station = by_station


class AnswerWithheld(Exception):
    """Raise from a Call handler when the call must stay unanswered (e.g. another replica owns the station now).

    The session then ends without answering it or any later call, so the station resends them on its next
    connection: neither a false CallResult nor a CallError it might take as final."""


class CallQueueFull(Exception):
    """Too many calls are already waiting to be sent to this station; the caller should back off."""
