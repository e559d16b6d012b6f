"""Sites: PUT/GET /api/v1/sites/{id} (a grid limit shared by stations) and PUT /api/v1/sites/{id}/limit (a live
override with an expiry, pushed by an energy manager or building meter)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.errors import ApiError
from csms.api.responses import JsonResponse
from csms.api.validation import json_body
from csms.sites import SiteService, StationOnOtherSite, parse_site


def site_routes(auth: TokenAuth, sites: SiteService) -> list[Route]:
    async def get_site(request: Request) -> Response:
        auth.require(request, "read")
        site_id = str(request.path_params["site_id"])
        view = await sites.view(site_id)
        if view is None:
            raise ApiError(404, "not_found", f"site {site_id} does not exist")
        return JsonResponse(view)

    async def put_site(request: Request) -> Response:
        auth.require(request, "operator")
        site_id = str(request.path_params["site_id"])
        body = await json_body(request)
        try:
            spec = parse_site(site_id, body)
        except ValueError as exc:
            raise ApiError(422, "invalid", str(exc)) from None
        try:
            created = await sites.put(spec)
        except StationOnOtherSite as exc:
            raise ApiError(409, "conflict", str(exc), {"station_id": exc.station_id, "site_id": exc.site_id}) from None
        return JsonResponse(await sites.view(site_id), status_code=201 if created else 200)

    async def put_limit(request: Request) -> Response:
        auth.require(request, "operator")
        site_id = str(request.path_params["site_id"])
        body = await json_body(request)
        try:
            found = await sites.set_limit(site_id, body)
        except ValueError as exc:
            raise ApiError(422, "invalid", str(exc)) from None
        if not found:
            raise ApiError(404, "not_found", f"site {site_id} does not exist")
        return JsonResponse(await sites.view(site_id))

    return [
        Route("/api/v1/sites/{site_id}", get_site),
        Route("/api/v1/sites/{site_id}", put_site, methods=["PUT"]),
        Route("/api/v1/sites/{site_id}/limit", put_limit, methods=["PUT"]),
    ]
