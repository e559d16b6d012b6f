"""The console's ASGI app, mounted at /ui on every replica's API port."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from csms.console.auth_routes import auth_routes
from csms.console.cluster_routes import cluster_routes
from csms.console.fleet_routes import fleet_routes
from csms.console.idtag_routes import idtag_routes
from csms.console.live_routes import live_routes
from csms.console.services import ConsoleServices
from csms.console.session import SESSION_COOKIE
from csms.console.session_routes import session_routes
from csms.console.site_routes import site_routes
from csms.console.web import ConsoleError, Page, build_environment

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
    " frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def build_console(services: ConsoleServices) -> Starlette:
    page = Page(build_environment(), services.auth)

    async def console_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            status, message = exc.status_code, str(exc.detail)
        else:
            assert isinstance(exc, ConsoleError)
            status, message = exc.status, exc.message
        if _wants_json(request):
            return JSONResponse({"error": {"status": status, "code": "console", "message": message}}, status)
        request.scope.setdefault("console_session", services.auth.load(request.cookies.get(SESSION_COOKIE)))
        return page.render(request, "error.html", {"status": status, "message": message}, status=status)

    app = Starlette(
        routes=[
            *auth_routes(services, page),
            *fleet_routes(services, page),
            *session_routes(services, page),
            *idtag_routes(services, page),
            *cluster_routes(services, page),
            *site_routes(services, page),
            *live_routes(services),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={ConsoleError: console_error, HTTPException: console_error},
    )

    async def with_headers(scope, receive, send):  # type: ignore[no-untyped-def]
        async def send_with_headers(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_headers)

    return with_headers  # type: ignore[return-value]


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "") or request.url.path.endswith("/live")
