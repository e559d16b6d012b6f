"""Named charging-profile templates: PUT/GET/DELETE /api/v1/charging-profiles/{name} and the list.

A template is a 1.6 csChargingProfiles object checked by the SetChargingProfile rules, less what is only known
when it is used: the connector (checked then) and the transaction (given then). SetChargingProfile sends one
with `{"connectorId": 1, "template": "<name>"}` (see command_payloads.py).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.contract import Answer, Operation, query, route
from csms.api.errors import ApiError
from csms.api.models.operations import ChargingProfileTemplate, ChargingProfileTemplatePage
from csms.api.models.queries import AfterPage
from csms.api.responses import JsonResponse
from csms.api.validation import json_body
from csms.commands import CommandRejected, CommandService
from csms.operations import ProfileTemplates

TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9._~\-]{1,64}$")


def check_template(commands: CommandService, profile: dict[str, Any]) -> None:
    if "transactionId" in profile:
        raise ApiError(
            422, "invalid", "transactionId is not part of a template: give it in the SetChargingProfile body"
        )
    # A stand-in connector the purpose allows, and a stand-in id if the template leaves it to the server.
    connector = 0 if profile.get("chargingProfilePurpose") == "ChargePointMaxProfile" else 1
    trial = {"connectorId": connector, "csChargingProfiles": {"chargingProfileId": 0, **profile}}
    try:
        commands.validate("SetChargingProfile", trial, "ocpp1.6")  # templates are 1.6 profiles
    except CommandRejected as exc:
        # Name fields as they are in the template body, not inside the stand-in SetChargingProfile payload.
        message = exc.message.replace("SetChargingProfile payload invalid: ", "charging-profile template invalid: ")
        message = message.replace("csChargingProfiles.", "").replace("csChargingProfiles ", "the template ")
        raise ApiError(422, "invalid", message, exc.details) from None


TAG = "operations"
TEMPLATE = Answer(ChargingProfileTemplate, "The template.")
LIST = Operation(
    "GET", "/api/v1/charging-profiles", "listChargingProfileTemplates", TAG, "List charging-profile templates",
    "read", {200: Answer(ChargingProfileTemplatePage, "A page.")}, (400,), query=AfterPage,
)  # fmt: skip
GET = Operation(
    "GET", "/api/v1/charging-profiles/{name}", "getChargingProfileTemplate", TAG, "A charging-profile template",
    "read", {200: TEMPLATE}, (400, 404), path_params=("TemplateName",),
)  # fmt: skip
PUT = Operation(
    "PUT", "/api/v1/charging-profiles/{name}", "putChargingProfileTemplate", TAG,
    "Create or replace a charging-profile template (SetChargingProfile may send it by name)", "operator",
    {200: Answer(ChargingProfileTemplate, "Replaced."), 201: Answer(ChargingProfileTemplate, "Created.")},
    (400, 413, 422), path_params=("TemplateName",), body="ChargingProfileTemplatePut", body_required=True,
)  # fmt: skip
DELETE = Operation(
    "DELETE", "/api/v1/charging-profiles/{name}", "deleteChargingProfileTemplate", TAG,
    "Delete a charging-profile template (profiles already sent stay on the stations)", "operator",
    {204: Answer(None, "Deleted.", None)}, (400, 404), path_params=("TemplateName",),
)  # fmt: skip
OPERATIONS = (LIST, GET, PUT, DELETE)


def charging_profile_routes(auth: TokenAuth, templates: ProfileTemplates, commands: CommandService) -> list[Route]:
    def path_name(request: Request) -> str:
        name = str(request.path_params["name"])
        if not TEMPLATE_NAME.fullmatch(name):
            raise ApiError(400, "bad_request", "a template name is 1-64 characters of A-Z a-z 0-9 . _ ~ -")
        return name

    async def list_templates(request: Request) -> Response:
        q = query(request, AfterPage)
        items = await templates.page(limit=q.limit, after=q.after)
        return JsonResponse({"items": items, "next": items[-1]["name"] if len(items) == q.limit else None})

    async def get_template(request: Request) -> Response:
        name = path_name(request)
        template = await templates.get(name)
        if template is None:
            raise ApiError(404, "not_found", f"charging-profile template {name} does not exist")
        return JsonResponse(template)

    async def put_template(request: Request) -> Response:
        name = path_name(request)
        profile = await json_body(request)
        check_template(commands, profile)
        template, created = await templates.put(name, profile, request.state.actor.name)
        return JsonResponse(template, status_code=201 if created else 200)

    async def delete_template(request: Request) -> Response:
        name = path_name(request)
        if not await templates.delete(name):
            raise ApiError(404, "not_found", f"charging-profile template {name} does not exist")
        return Response(status_code=204)

    return [route(LIST, auth, list_templates), route(GET, auth, get_template), route(PUT, auth, put_template),
            route(DELETE, auth, delete_template)]  # fmt: skip
