"""What the server fills in for an operator before a command is validated and sent.

- ReserveNow without `reservationId`: the next id from a Postgres sequence (unique across the cluster, int32,
  never one a station already has on record). It is in the command record's `payload.reservationId`.
- SetChargingProfile with `{"connectorId", "template", "transactionId"?}` instead of `csChargingProfiles`: the
  named template's profile, with the transactionId (TxProfile) from the body. The result is then validated
  like any inline profile, so a template that does not suit the connector is a 422.

Both are OCPP 1.6 shapes: for a station that speaks 2.0.1 the body is sent as given (a template is a 422).
"""

from __future__ import annotations

from typing import Any

from csms.api.charging_profiles_routes import TEMPLATE_NAME
from csms.api.errors import ApiError
from csms.operations import OperationsViews, ProfileTemplates

Payload = dict[str, Any]
TEMPLATE_USE_FIELDS = frozenset({"connectorId", "template", "transactionId"})


class CommandPayloads:
    def __init__(self, views: OperationsViews, templates: ProfileTemplates) -> None:
        self._views = views
        self._templates = templates

    async def complete(self, action: str, body: Payload, protocol: str | None) -> Payload:
        if protocol not in (None, "ocpp1.6"):
            if action == "SetChargingProfile" and "template" in body:
                raise ApiError(
                    422, "invalid", f"templates are OCPP 1.6 charging profiles; the station speaks {protocol}"
                )
            return body
        if action == "ReserveNow" and "reservationId" not in body:
            return {**body, "reservationId": await self._views.next_reservation_id()}
        if action == "SetChargingProfile" and "template" in body:
            return await self._from_template(body)
        return body

    async def _from_template(self, body: Payload) -> Payload:
        if "csChargingProfiles" in body:
            raise ApiError(422, "invalid", "give either template or csChargingProfiles, not both")
        unknown = sorted(set(body) - TEMPLATE_USE_FIELDS)
        if unknown:
            allowed = ", ".join(sorted(TEMPLATE_USE_FIELDS))
            raise ApiError(422, "invalid", f"unknown field(s) with template: {', '.join(unknown)}; allowed: {allowed}")
        name = body["template"]
        if not isinstance(name, str) or not TEMPLATE_NAME.fullmatch(name):
            raise ApiError(422, "invalid", "template must be a template name: 1-64 of A-Z a-z 0-9 . _ ~ -")
        template = await self._templates.get(name)
        if template is None:
            raise ApiError(404, "not_found", f"charging-profile template {name} does not exist")
        profile = template["profile"]
        if "transactionId" in body:
            profile = {**profile, "transactionId": body["transactionId"]}
        payload: Payload = {"csChargingProfiles": profile}
        if "connectorId" in body:
            payload["connectorId"] = body["connectorId"]
        return payload
