"""Sign-in with an API token (form field ``token``) into a session cookie; sign-out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from csms.commands import Actor
from csms.console.services import ConsoleServices
from csms.console.session import LOGIN_COOKIE, LOGIN_TTL, SESSION_COOKIE
from csms.console.web import Page, form_of, signed_in


def _secure(request: Request) -> bool:
    """Secure cookies when the browser reached us over TLS (directly or through a TLS-terminating proxy)."""
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"


def auth_routes(s: ConsoleServices, page: Page) -> list[Route]:
    async def login_form(request: Request, error: str = "", status: int = 200) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE) or s.auth.new_login_nonce()
        response = page.render(
            request, "login.html", {"login_csrf": s.auth.csrf_token(nonce), "error": error}, status=status
        )
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=LOGIN_TTL,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
            path="/ui",
        )
        return response

    async def login(request: Request) -> Response:
        form = await form_of(request)
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if not nonce or not s.auth.csrf_ok(nonce, str(form.get("csrf") or "")):
            return await login_form(request, "The sign-in form expired; please try again.", 403)
        signed = s.auth.sign_in(str(form.get("token") or ""))
        if signed is None:
            await s.audit.record(Actor("console:anonymous"), "sign-in", "", "refused")
            return await login_form(request, "That token is not valid.", 401)
        session, cookie = signed
        await s.audit.record(session.actor, "sign-in", "", "ok")
        response = RedirectResponse("/ui/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=int(s.auth.lifetime),
            httponly=True,
            samesite="lax",
            secure=_secure(request),
            path="/ui",
        )
        response.delete_cookie(LOGIN_COOKIE, path="/ui")
        return response

    @signed_in(s.auth)
    async def logout(request: Request) -> Response:
        session = request.scope["console_session"]
        await s.audit.record(session.actor, "sign-out", "", "ok")
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/ui")
        return response

    async def login_get(request: Request) -> Response:
        return await login_form(request)

    return [
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
