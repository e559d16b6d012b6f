"""Security operations the API drives on a station: password rotation and raising its security profile.

Both are a configuration change the station must accept, sent as an audited command (routed to the owning
replica like any other), with the stored state switched only as far as the station's answer allows:

- rotation: the new password's hash is kept *beside* the current one; the station's acceptance keeps it, and
  its first connection with it makes it the only one (the handshake does that), so a rotation never locks a
  station out. The password is never returned, logged, or written to the command audit trail.
- profile: stored once the station accepted; a station that rejects keeps its profile.

The station's protocol decides the message (1.6 ChangeConfiguration; 2.0.1 SetVariables), the rest is shared.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from csms.commands import CommandService
from csms.stations import SecurityEventRecorder, SecurityStore, hash_password
from csms.stations.security_events import PASSWORD_ROTATION, PROFILE_CHANGE

Payload = dict[str, Any]
ProtocolOf = Callable[[str], Awaitable[str | None]]  # the station's subprotocol, None: never connected
ACCEPTED = ("Accepted", "RebootRequired")  # 1.6 ChangeConfiguration / 2.0.1 SetVariables answers that apply it
HIDDEN = "(new password: never recorded)"


def new_password() -> str:
    """20 random bytes as 40 hex characters: the OCPP AuthorizationKey's upper length, printable everywhere."""
    return secrets.token_hex(20)


def password_call(protocol: str | None, password: str, *, redact: bool = False) -> tuple[str, Payload]:
    value = HIDDEN if redact else password
    if protocol == "ocpp2.0.1":
        variable = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}
        return "SetVariables", {"setVariableData": [{**variable, "attributeValue": value}]}
    return "ChangeConfiguration", {"key": "AuthorizationKey", "value": value}


class ProfileChangeUnsupported(Exception):
    """2.0.1 raises a profile with SetNetworkProfile, SetVariables NetworkConfigurationPriority and a Reset (its
    SecurityProfile variable is read-only): that sequence is not built yet."""


def profile_call(protocol: str | None, profile: int) -> tuple[str, Payload]:
    if protocol == "ocpp2.0.1":
        raise ProfileChangeUnsupported(protocol)
    return "ChangeConfiguration", {"key": "SecurityProfile", "value": str(profile)}


def answered_accepted(record: Payload) -> bool:
    if record.get("status") != "completed" or not isinstance(record.get("result"), dict):
        return False
    result = record["result"]
    if "setVariableResult" in result:  # 2.0.1
        return all(item.get("attributeStatus") in ACCEPTED for item in result["setVariableResult"])
    return result.get("status") in ACCEPTED


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    command: Payload


class SecurityOperations:
    def __init__(
        self,
        store: SecurityStore,
        commands: CommandService,
        events: SecurityEventRecorder,
        password_iterations: int,
        protocol_of: ProtocolOf,
    ) -> None:
        self._store = store
        self._commands = commands
        self._events = events
        self._iterations = password_iterations
        self._protocol_of = protocol_of

    async def rotate_password(self, station_id: str, requested_by: str) -> Outcome:
        protocol = await self._protocol_of(station_id)
        password = new_password()
        pending = await hash_password(password, self._iterations)
        await self._store.begin_rotation(station_id, pending)
        action, payload = password_call(protocol, password)
        _, audit = password_call(protocol, password, redact=True)
        record = await self._commands.submit(
            station_id, action, payload, requested_by, protocol=protocol, audit_payload=audit
        )
        accepted = answered_accepted(record)
        await self._store.end_rotation(station_id, pending, accepted)
        detail = "station accepted the new password" if accepted else f"not changed: {_why(record)}"
        self._events.record(station_id, PASSWORD_ROTATION, detail)
        return Outcome(accepted, record)

    async def raise_profile(self, station_id: str, profile: int, requested_by: str) -> Outcome:
        """Raises ProfileChangeUnsupported for a 2.0.1 station (see `profile_call`)."""
        protocol = await self._protocol_of(station_id)
        action, payload = profile_call(protocol, profile)
        record = await self._commands.submit(station_id, action, payload, requested_by, protocol=protocol)
        accepted = answered_accepted(record)
        if accepted:
            await self._store.set_profile(station_id, profile)
        detail = f"to profile {profile}: " + ("accepted" if accepted else f"not changed: {_why(record)}")
        self._events.record(station_id, PROFILE_CHANGE, detail)
        return Outcome(accepted, record)


def _why(record: Payload) -> str:
    if record.get("status") == "completed":
        return f"station answered {record['result']}"
    error = record.get("error") or {}
    return f"{record.get('status')}: {error.get('description', '')}"
