"""Operator-initiated OCPP operations: validation, routing to the owning replica, and their audit trail."""

from csms.commands.actor import Actor
from csms.commands.catalogue import IDEMPOTENT_ACTIONS, PROTOCOLS, actions, catalogue, version_of
from csms.commands.errors import CommandRejected, ForwardFailed, NotConnectedHere, ProtocolChanged
from csms.commands.forwarding import SECRET_HEADER, HttpForwarder, secret_matches
from csms.commands.service import (
    MAX_BATCH,
    BatchItem,
    CommandService,
    ExecuteRequest,
    ExecuteResult,
    Guard,
    GuardCheck,
)
from csms.commands.store import MIGRATIONS, CommandStore

__all__ = [
    "IDEMPOTENT_ACTIONS",
    "MAX_BATCH",
    "MIGRATIONS",
    "PROTOCOLS",
    "SECRET_HEADER",
    "Actor",
    "BatchItem",
    "CommandRejected",
    "CommandService",
    "CommandStore",
    "ExecuteRequest",
    "ExecuteResult",
    "ForwardFailed",
    "Guard",
    "GuardCheck",
    "HttpForwarder",
    "NotConnectedHere",
    "ProtocolChanged",
    "actions",
    "catalogue",
    "secret_matches",
    "version_of",
]
