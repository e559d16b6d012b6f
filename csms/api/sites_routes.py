"""Sites: PUT/GET /api/v1/sites/{id} (a grid limit shared by stations) and PUT /api/v1/sites/{id}/limit (a live
override with an expiry, pushed by an energy manager or building meter)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.contract import Answer, Operation, route
from csms.api.errors import ApiError
from csms.api.models.sites import Site, SiteLimitPut, SitePut
from csms.api.responses import JsonResponse
from csms.api.validation import bad, json_body, parse
from csms.sites import SITE_ID_PATTERN, SiteService, StationOnOtherSite

_SITE_ID = re.compile(SITE_ID_PATTERN)
TAG = "sites"
GET = Operation(
    "GET", "/api/v1/sites/{site_id}", "getSite", TAG,
    "A site: its limit, each station's failsafe, allocation and measured draw, the last round", "read",
    {200: Answer(Site, "The site.")}, (400, 404), path_params=("SiteId",),
)  # fmt: skip
PUT = Operation(
    "PUT", "/api/v1/sites/{site_id}", "putSite", TAG,
    "Create or replace a site (stations sharing one grid limit); a live override stays", "operator",
    {200: Answer(Site, "Replaced."), 201: Answer(Site, "Created.")}, (400, 413, 422),
    conflict="conflict: a listed station belongs to another site (details name it).", path_params=("SiteId",),
    body=SitePut, body_required=True,
)  # fmt: skip
PUT_LIMIT = Operation(
    "PUT", "/api/v1/sites/{site_id}/limit", "putSiteLimit", TAG,
    "Override the site's limit until an expiry (an energy manager or building meter)", "operator",
    {200: Answer(Site, "The site with its override.")}, (400, 404, 413, 422), path_params=("SiteId",),
    body=SiteLimitPut, body_required=True,
)  # fmt: skip
OPERATIONS = (GET, PUT, PUT_LIMIT)


def site_routes(auth: TokenAuth, sites: SiteService) -> list[Route]:
    async def get_site(request: Request) -> Response:
        site_id = str(request.path_params["site_id"])
        view = await sites.view(site_id)
        if view is None:
            raise ApiError(404, "not_found", f"site {site_id} does not exist")
        return JsonResponse(view)

    async def put_site(request: Request) -> Response:
        site_id = str(request.path_params["site_id"])
        if not _SITE_ID.match(site_id):
            raise bad("site id must be 1-64 of A-Z a-z 0-9 . _ ~ -")
        spec = parse(SitePut, await json_body(request)).spec(site_id)
        try:
            created = await sites.put(spec)
        except StationOnOtherSite as exc:
            raise ApiError(409, "conflict", str(exc), {"station_id": exc.station_id, "site_id": exc.site_id}) from None
        return JsonResponse(await sites.view(site_id), status_code=201 if created else 200)

    async def put_limit(request: Request) -> Response:
        site_id = str(request.path_params["site_id"])
        body = parse(SiteLimitPut, await json_body(request))
        try:
            until = body.until(datetime.now(UTC))
        except ValueError as exc:
            raise bad(f"expires_at: {exc}") from None
        if not await sites.set_limit(site_id, body.limit, until):
            raise ApiError(404, "not_found", f"site {site_id} does not exist")
        return JsonResponse(await sites.view(site_id))

    return [route(GET, auth, get_site), route(PUT, auth, put_site), route(PUT_LIMIT, auth, put_limit)]
