"""Security operations the API drives on a station: password rotation and raising its security profile.

Both are a configuration change the station must accept, sent as an audited command (routed to the owning
replica like any other), with the stored state switched only as far as the station's answer allows:

- rotation: the new password's hash is kept *beside* the current one; the station's acceptance keeps it, and
  its first connection with it makes it the only one (the handshake does that), so a rotation never locks a
  station out. The password is never returned, logged, or written to the command audit trail.
- profile: stored once the station accepted; a station that rejects keeps its profile.

The station's protocol decides the messages (1.6 ChangeConfiguration; 2.0.1 SetVariables for a password and, for
a profile, SetNetworkProfile + SetVariables + Reset, see network_profile.py), the rest is shared.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from csms.central_system.network_profile import network_profile_steps
from csms.commands import Actor, CommandService
from csms.stations import SecurityEventRecorder, SecurityStore, hash_password
from csms.stations.security_events import PASSWORD_ROTATION, PROFILE_CHANGE

Payload = dict[str, Any]
ProtocolOf = Callable[[str], Awaitable[str | None]]  # the station's subprotocol, None: never connected
ACCEPTED = ("Accepted", "RebootRequired", "Scheduled")  # answers that apply a change (Scheduled: a 2.0.1 Reset)
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


def profile_calls(protocol: str | None, profile: int, current: int, public_url: str) -> list[tuple[str, Payload]]:
    """Raises ProfileChangeUnsupported for a 2.0.1 station when the CSMS's public URL is not configured."""
    if protocol == "ocpp2.0.1":
        return network_profile_steps(public_url, profile, current)
    return [("ChangeConfiguration", {"key": "SecurityProfile", "value": str(profile)})]


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
    command: Payload  # the last command sent: the one refused, or the last one accepted
    failed_step: str | None = None  # the action the station refused (or failed to answer)


class SecurityOperations:
    def __init__(
        self,
        store: SecurityStore,
        commands: CommandService,
        events: SecurityEventRecorder,
        password_iterations: int,
        protocol_of: ProtocolOf,
        public_url: str = "",
    ) -> None:
        self._store = store
        self._commands = commands
        self._events = events
        self._iterations = password_iterations
        self._protocol_of = protocol_of
        self._public_url = public_url

    async def rotate_password(self, station_id: str, requested_by: Actor) -> Outcome:
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

    async def raise_profile(self, station_id: str, profile: int, requested_by: Actor, current: int) -> Outcome:
        """Sends the protocol's steps in order, stopping at the first one not accepted; the profile is stored only
        when all were. Raises ProfileChangeUnsupported (see `profile_calls`) before sending anything."""
        protocol = await self._protocol_of(station_id)
        record: Payload = {}
        failed: str | None = None
        for action, payload in profile_calls(protocol, profile, current, self._public_url):
            record = await self._commands.submit(station_id, action, payload, requested_by, protocol=protocol)
            if not answered_accepted(record):
                failed = action
                break
        if failed is None:
            await self._store.set_profile(station_id, profile)
        detail = f"to profile {profile}: " + ("accepted" if failed is None else f"not changed, {failed} {_why(record)}")
        self._events.record(station_id, PROFILE_CHANGE, detail)
        return Outcome(failed is None, record, failed)


def _why(record: Payload) -> str:
    if record.get("status") == "completed":
        return f"station answered {record['result']}"
    error = record.get("error") or {}
    return f"{record.get('status')}: {error.get('description', '')}"
