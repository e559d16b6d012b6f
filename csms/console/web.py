"""What every console page shares: templates, the signed-in session, CSRF checks, query parsing, errors."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from csms.console.session import SESSION_COOKIE, Session, Sessions

TEMPLATES = Path(__file__).parent / "templates"
PAGE_SIZES = (25, 50, 100)


class ConsoleError(Exception):
    """A request the console refuses: shown as a page (or JSON for script calls) with this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _ago(value: Any) -> str:
    if not value:
        return "—"
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    seconds = int((datetime.now(UTC) - when).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _when(value: Any) -> str:
    if not value:
        return "—"
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return str(when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))


def _kwh(wh: Any) -> str:
    return "—" if wh is None else f"{float(wh) / 1000:,.2f} kWh"


def build_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ago=_ago, when=_when, kwh=_kwh)
    return env


@dataclass
class Page:
    """Renders templates with the session's context; ``?fragment=<block>`` renders one live block only."""

    env: jinja2.Environment
    sessions: Sessions

    def render(self, request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        template = self.env.get_template(name)
        session: Session | None = request.scope.get("console_session")
        full = {
            "request": request,
            "session": session,
            "csrf": self.sessions.csrf_token(session.nonce) if session else "",
            "can_operate": bool(session and session.allows("operator")),
            "path": request.url.path,
            **context,
        }
        fragment = request.query_params.get("fragment")
        if fragment:
            if fragment not in template.blocks:
                raise ConsoleError(404, f"no live block {fragment!r} on this page")
            html = "".join(template.blocks[fragment](template.new_context(full)))
        else:
            html = template.render(full)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


Handler = Callable[[Request], Awaitable[Response]]


def signed_in(sessions: Sessions, needed: str = "read") -> Callable[[Handler], Handler]:
    """Route decorator: a valid session (else to the sign-in page), the role, and CSRF for unsafe methods."""

    def wrap(handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            session = sessions.load(request.cookies.get(SESSION_COOKIE))
            if session is None:
                if request.method == "GET" and "fragment" not in request.query_params:
                    return RedirectResponse("/ui/login", status_code=303)
                raise ConsoleError(401, "your console session has ended; sign in again")
            if not session.allows(needed):
                raise ConsoleError(403, f"your role ({session.role}) may not do this; it needs {needed}")
            if request.method not in ("GET", "HEAD"):
                await check_csrf(request, sessions, session.nonce)
            request.scope["console_session"] = session
            return await handler(request)

        return guarded

    return wrap


MAX_FORM_BYTES = 64 * 1024


async def form_of(request: Request) -> dict[str, str]:
    """An urlencoded form (the console's forms are all plain fields), bounded; the first value of each name."""
    if "console_form" in request.scope:
        return dict(request.scope["console_form"])
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise ConsoleError(415, "forms are sent as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ConsoleError(413, "the form is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise ConsoleError(400, "the form is not UTF-8 text") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if "\x00" in value:
            raise ConsoleError(400, f"{name} must not contain NUL characters")
        form.setdefault(name, value)
    request.scope["console_form"] = form
    return dict(form)


async def check_csrf(request: Request, sessions: Sessions, nonce: str) -> None:
    presented = request.headers.get("x-csrf-token")
    if presented is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        presented = (await form_of(request)).get("csrf", "")
    if not sessions.csrf_ok(nonce, presented):
        raise ConsoleError(403, "the form's CSRF token is missing or wrong; reload the page and try again")


def session_of(request: Request) -> Session:
    session: Session = request.scope["console_session"]
    return session


def query_text(request: Request, name: str, max_length: int = 100) -> str:
    value = request.query_params.get(name, "").strip()
    if len(value) > max_length:
        raise ConsoleError(400, f"{name} is longer than {max_length} characters")
    return value


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name, "")
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ConsoleError(400, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def query_choice(request: Request, name: str, choices: tuple[str, ...] | list[str], default: str = "") -> str:
    value = request.query_params.get(name, default)
    if value and value not in choices:
        raise ConsoleError(400, f"{name} must be one of: {', '.join(choices)}")
    return value


def query_date(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ConsoleError(400, f"{name} must be a date or date and time (YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    if not 2000 <= value.year <= 2200:
        raise ConsoleError(400, f"{name} must be between the years 2000 and 2200")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def uptime(started_at: float) -> str:
    seconds = max(0, int(time.time() - started_at))
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"
