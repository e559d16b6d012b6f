"""Checks beyond the schema for an operator command, by the protocol the station speaks (the API answers 422)."""

from __future__ import annotations

from typing import Any

from csms.operations.validation import check_operation_v16
from csms.operations.validation_v201 import check_operation_v201

_BY_PROTOCOL = {"ocpp1.6": check_operation_v16, "ocpp2.0.1": check_operation_v201}


def check_operation(protocol: str, action: str, payload: dict[str, Any]) -> None:
    """Raise InvalidOperation (a ValueError) naming the field; a protocol without rules has nothing to check."""
    check = _BY_PROTOCOL.get(protocol)
    if check is not None:
        check(action, payload)
