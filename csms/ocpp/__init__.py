"""OCPP-J framing, RPC and schema validation on trio; knows nothing of storage, etcd or the domain.

Typical use by the station gateway::

    validator = Validator.for_version("1.6")          # at start-up: compiles every schema once
    session = RpcSession(transport, handler, validator, label=station_id)
    nursery.start_soon(session.serve)                  # ends when the connection closes
    result = await session.call("Reset", {"type": "Soft"})
"""

from csms.ocpp.domain import DomainCheck, StorageLimits
from csms.ocpp.errors import (
    FORMAT_VIOLATION,
    FORMATION_VIOLATION,
    GENERIC_ERROR,
    INTERNAL_ERROR,
    MESSAGE_TYPE_NOT_SUPPORTED,
    NOT_IMPLEMENTED,
    NOT_SUPPORTED,
    OCCURENCE_CONSTRAINT_VIOLATION,
    OCCURRENCE_CONSTRAINT_VIOLATION,
    PROPERTY_CONSTRAINT_VIOLATION,
    PROTOCOL_ERROR,
    RPC_FRAMEWORK_ERROR,
    SECURITY_ERROR,
    SUPPORTED_VERSIONS,
    TYPE_CONSTRAINT_VIOLATION,
    AnswerWithheld,
    CallErrorReceived,
    CallQueueFull,
    ErrorCodes,
    InvalidResponse,
    OcppError,
    SessionClosed,
    error_codes,
)
from csms.ocpp.frames import Call, CallError, CallResult, Frame, FrameError, encode, parse_frame
from csms.ocpp.rpc import CallHandler, MessageTransport, RpcObserver, RpcSession
from csms.ocpp.schemas import Validator, load_schemas

__all__ = [
    "FORMATION_VIOLATION",
    "FORMAT_VIOLATION",
    "GENERIC_ERROR",
    "INTERNAL_ERROR",
    "MESSAGE_TYPE_NOT_SUPPORTED",
    "NOT_IMPLEMENTED",
    "NOT_SUPPORTED",
    "OCCURENCE_CONSTRAINT_VIOLATION",
    "OCCURRENCE_CONSTRAINT_VIOLATION",
    "PROPERTY_CONSTRAINT_VIOLATION",
    "PROTOCOL_ERROR",
    "RPC_FRAMEWORK_ERROR",
    "SECURITY_ERROR",
    "SUPPORTED_VERSIONS",
    "TYPE_CONSTRAINT_VIOLATION",
    "AnswerWithheld",
    "Call",
    "CallError",
    "CallErrorReceived",
    "CallHandler",
    "CallQueueFull",
    "CallResult",
    "DomainCheck",
    "ErrorCodes",
    "Frame",
    "FrameError",
    "InvalidResponse",
    "MessageTransport",
    "OcppError",
    "RpcObserver",
    "RpcSession",
    "SessionClosed",
    "StorageLimits",
    "Validator",
    "encode",
    "error_codes",
    "load_schemas",
    "parse_frame",
]
