"""Sites: each site's limit now, what its stations hold and draw, and who computes it (a page per site)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.console.services import ConsoleServices
from csms.console.web import ConsoleError, Page, signed_in


def site_routes(s: ConsoleServices, page: Page) -> list[Route]:
    @signed_in(s.auth)
    async def sites(request: Request) -> Response:
        views = [await s.sites.view(site_id) for site_id in await s.sites.store.site_ids()] if s.sites else []
        return page.render(request, "sites.html", {"sites": [v for v in views if v is not None], "site": None})

    @signed_in(s.auth)
    async def site(request: Request) -> Response:
        view = await s.sites.view(str(request.path_params["site_id"])) if s.sites else None
        if view is None:
            raise ConsoleError(404, "No such site.")
        return page.render(request, "sites.html", {"sites": [view], "site": view})

    return [Route("/sites", sites), Route("/sites/{site_id}", site)]
