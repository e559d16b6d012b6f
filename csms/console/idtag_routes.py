"""Id tags: list (with parent groups), create, block, expire — audited, operators only for changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from csms.api import id_tag_json
from csms.authorization import STATUSES
from csms.console.services import ConsoleServices
from csms.console.web import ConsoleError, Page, form_of, query_int, query_text, session_of, signed_in


def _tag(raw: Any, what: str, required: bool = True) -> str | None:
    text = str(raw or "").strip()
    if not text and not required:
        return None
    if not 1 <= len(text) <= 20 or "\x00" in text:
        raise ConsoleError(400, f"{what} is 1-20 characters (OCPP IdToken)")
    return text


def _expiry(raw: Any) -> datetime | None:
    text = str(raw or "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConsoleError(400, "expiry must be a date and time (YYYY-MM-DDTHH:MM)") from None
    if not 2000 <= value.year <= 2200:
        raise ConsoleError(400, "expiry must be between the years 2000 and 2200")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def idtag_routes(s: ConsoleServices, page: Page) -> list[Route]:
    @signed_in(s.auth)
    async def id_tags(request: Request) -> Response:
        size = query_int(request, "size", 50, 1, 100)
        after = query_text(request, "after", 20)
        tags = await s.id_tags.page(limit=size, after=after)
        context = {
            "tags": [id_tag_json(t) for t in tags],
            "next": tags[-1].id_tag if len(tags) == size else None,
            "size": size,
            "statuses": STATUSES,
        }
        return page.render(request, "idtags.html", context)

    @signed_in(s.auth, "operator")
    async def save(request: Request) -> Response:
        form = await form_of(request)
        id_tag = _tag(form.get("id_tag"), "the id tag")
        assert id_tag is not None
        status = str(form.get("status") or "Accepted")
        if status not in STATUSES:
            raise ConsoleError(400, f"status must be one of: {', '.join(STATUSES)}")
        parent = _tag(form.get("parent_id_tag"), "the parent id tag", required=False)
        await s.id_tags.put(id_tag, status, _expiry(form.get("expiry_date")), parent)
        await s.audit.record(session_of(request).actor, "id-tag save", id_tag, "ok", {"status": status})
        return RedirectResponse("/ui/id-tags", status_code=303)

    @signed_in(s.auth, "operator")
    async def change(request: Request) -> Response:
        """Block or expire an existing tag, keeping its other fields."""
        id_tag = str(request.path_params["id_tag"])
        tag = await s.id_tags.get(id_tag)
        if tag is None:
            raise ConsoleError(404, f"id tag {id_tag} does not exist")
        what = str(request.path_params["what"])
        if what == "block":
            status, expiry = "Blocked", tag.expiry_date
        elif what == "expire":
            status, expiry = tag.status, datetime.now(UTC)
        elif what == "unblock":
            status, expiry = "Accepted", tag.expiry_date
        else:
            raise ConsoleError(404, "unknown id-tag action")
        await s.id_tags.put(id_tag, status, expiry, tag.parent_id_tag, tag.token_type)
        await s.audit.record(session_of(request).actor, f"id-tag {what}", id_tag, "ok")
        return RedirectResponse("/ui/id-tags", status_code=303)

    return [
        Route("/id-tags", id_tags),
        Route("/id-tags", save, methods=["POST"]),
        Route("/id-tags/{id_tag}/{what}", change, methods=["POST"]),
    ]
