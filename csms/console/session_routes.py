"""Charging sessions: filtered list, detail with the meter-values chart, CSV export of the filtered list."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from csms.console.charts import session_charts
from csms.console.services import ConsoleServices
from csms.console.web import PAGE_SIZES, ConsoleError, Page, query_choice, query_date, query_int, query_text, signed_in
from csms.transactions import CSV_COLUMNS, SessionFilter

CSV_MAX_ROWS = 100_000
INT32_MAX = 2**31 - 1


def session_filter(request: Request) -> SessionFilter:
    active = query_choice(request, "active", ("yes", "no"))
    return SessionFilter(
        station_id=query_text(request, "station_id"),
        id_tag=query_text(request, "id_tag", 20),
        active=None if not active else active == "yes",
        since=query_date(request, "since"),
        until=query_date(request, "until"),
    )


def session_routes(s: ConsoleServices, page: Page) -> list[Route]:
    @signed_in(s.auth)
    async def sessions(request: Request) -> Response:
        f = session_filter(request)
        size = query_int(request, "size", 50, 1, 100)
        before = query_int(request, "before", 0, 0, INT32_MAX) or None
        items = await s.sessions.page(f, limit=size, before_id=before)
        context = {
            "f": f,
            "items": items,
            "size": size,
            "sizes": PAGE_SIZES,
            "next": items[-1]["id"] if len(items) == size else None,
            "query": request.url.query,
        }
        return page.render(request, "sessions.html", context)

    @signed_in(s.auth)
    async def session(request: Request) -> Response:
        raw = str(request.path_params["transaction_id"])
        if not (raw.isascii() and raw.isdigit()) or int(raw) > INT32_MAX:
            raise ConsoleError(400, "a session id is a positive 32-bit integer")
        found = await s.sessions.get(int(raw))
        if found is None:
            raise ConsoleError(404, f"session {raw} does not exist")
        series = await s.sessions.series(found["id"], found["station_id"])
        return page.render(request, "session.html", {"tx": found, "charts": session_charts(series)})

    @signed_in(s.auth)
    async def export(request: Request) -> Response:
        f = session_filter(request)

        async def rows() -> AsyncIterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(CSV_COLUMNS)
            async for item in s.sessions.export(f, max_rows=CSV_MAX_ROWS):
                writer.writerow([_cell(item.get(column)) for column in CSV_COLUMNS])
                if buffer.tell() > 64 * 1024:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue()

        return StreamingResponse(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="sessions.csv"', "Cache-Control": "no-store"},
        )

    return [
        Route("/sessions", sessions),
        Route("/sessions.csv", export),
        Route("/sessions/{transaction_id}", session),
    ]


def _cell(value: object) -> str:
    """No spreadsheet formulas from station-supplied text (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
