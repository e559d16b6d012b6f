"""What the server fills in for an operator before a command is validated and sent, in the station's version.

- Ids the operator leaves out: a ReserveNow's `reservationId` (1.6) / `id` (2.0.1) from the reservation
  sequence (never one a station already has on record); a 2.0.1 `requestId` (GetLog, UpdateFirmware, reports,
  ...) or RequestStartTransaction's `remoteStartId` from one Postgres sequence (unique across the cluster, so
  per station). They are in the command record's `payload`, as sent.
- SetChargingProfile with `{"connectorId" | "evseId", "template", "transactionId"?}` instead of an inline
  profile: the named template's profile, with the transactionId (TxProfile) from the body; for a 2.0.1 station
  mapped to a 2.0.1 chargingProfile (or a 422 saying why it cannot be). The result is then validated like any
  inline profile, so a template that does not suit the target is a 422.

A station that never connected has no version yet: its body is taken as 1.6's.
"""

from __future__ import annotations

from typing import Any

from csms.api.charging_profiles_routes import TEMPLATE_NAME
from csms.api.errors import ApiError
from csms.operations import InvalidOperation, OperationsViews, ProfileTemplates, profile_v201

Payload = dict[str, Any]

# Per protocol: the body's target field, the profile field, and the reservation id field.
_SHAPES = {
    "ocpp1.6": ("connectorId", "csChargingProfiles", "reservationId"),
    "ocpp2.0.1": ("evseId", "chargingProfile", "id"),
}
# 2.0.1 operations whose requestId ties the station's later notifications to them.
REQUEST_ID_ACTIONS = frozenset(
    {
        "CustomerInformation",
        "GetBaseReport",
        "GetChargingProfiles",
        "GetDisplayMessages",
        "GetLog",
        "GetMonitoringReport",
        "GetReport",
        "PublishFirmware",
        "UpdateFirmware",
    }
)


class CommandPayloads:
    def __init__(self, views: OperationsViews, templates: ProfileTemplates) -> None:
        self._views = views
        self._templates = templates

    async def complete(self, action: str, body: Payload, protocol: str | None) -> Payload:
        protocol = protocol or "ocpp1.6"
        if protocol not in _SHAPES:
            return body
        target, profile_field, reservation_field = _SHAPES[protocol]
        if action == "ReserveNow" and reservation_field not in body:
            return {**body, reservation_field: await self._views.next_reservation_id()}
        if action == "SetChargingProfile" and "template" in body:
            return await self._from_template(body, protocol, target, profile_field)
        if protocol == "ocpp2.0.1" and action in REQUEST_ID_ACTIONS and "requestId" not in body:
            return {**body, "requestId": await self._views.next_request_id()}
        if protocol == "ocpp2.0.1" and action == "RequestStartTransaction" and "remoteStartId" not in body:
            return {**body, "remoteStartId": await self._views.next_request_id()}
        return body

    async def _from_template(self, body: Payload, protocol: str, target: str, profile_field: str) -> Payload:
        if profile_field in body:
            raise ApiError(422, "invalid", f"give either template or {profile_field}, not both")
        allowed = {target, "template", "transactionId"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            fields = f"{', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            raise ApiError(422, "invalid", f"unknown field(s) with template: {fields}")
        name = body["template"]
        if not isinstance(name, str) or not TEMPLATE_NAME.fullmatch(name):
            raise ApiError(422, "invalid", "template must be a template name: 1-64 of A-Z a-z 0-9 . _ ~ -")
        template = await self._templates.get(name)
        if template is None:
            raise ApiError(404, "not_found", f"charging-profile template {name} does not exist")
        profile = template["profile"]
        if protocol == "ocpp2.0.1":
            try:
                profile = profile_v201(profile)
            except InvalidOperation as exc:
                raise ApiError(422, "invalid", f"template {name}: {exc}") from None
        if "transactionId" in body:
            profile = {**profile, "transactionId": body["transactionId"]}
        payload: Payload = {profile_field: profile}
        if target in body:
            payload[target] = body[target]
        return payload
