"""The audited command record, as every command route answers it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from csms.api.command_status import CommandStatus
from csms.api.models.fields import Protocol
from csms.api.models.resources import Page, Resource


class CommandRecord(Resource):
    """One audited command, in the OCPP version (`protocol`) it was validated for and sent in. `result` is the
    station's CallResult payload (status completed); `error` is {code, description, details?}: the station's
    CallError (call_error) or the CSMS's own reason (offline, timeout, unknown_outcome, failed; superseded: a
    site's profile not sent because the site's fence token was no longer current, error.code FenceSuperseded)."""

    id: int
    station_id: str
    protocol: Protocol
    action: str
    payload: dict[str, Any]
    status: CommandStatus
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    requested_by: str = Field(description="who: token:<name>, console:<name> (CSMS_API_TOKENS names) or csms:<job>")
    requested_role: Literal["read", "operator", "admin"] | None = Field(
        description="the role the token held; null for the CSMS's own commands and those recorded before names"
    )
    requested_at: datetime
    completed_at: datetime | None
    latency_ms: float | None
    executed_by: str | None
    attempts: int
    is_async: bool = Field(alias="async")


class CommandPage(Page[CommandRecord, int]):
    """Newest first; `next` is the `before` cursor."""
