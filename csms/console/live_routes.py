"""GET /ui/live: the Server-Sent Events stream of one open console page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from csms.console.live import KINDS, sse_stream
from csms.console.services import ConsoleServices
from csms.console.web import ConsoleError, query_text, signed_in


def live_routes(s: ConsoleServices) -> list[Route]:
    @signed_in(s.auth)
    async def live(request: Request) -> Response:
        kinds = frozenset(k for k in query_text(request, "kinds", 200).split(",") if k)
        if not kinds or not kinds <= KINDS:
            raise ConsoleError(400, f"kinds must be a comma-separated subset of: {', '.join(sorted(KINDS))}")
        station = query_text(request, "station", 200) or None
        if s.hub.client_count >= s.hub.max_clients:
            raise ConsoleError(503, "this replica serves as many live consoles as it may; try again later")

        async def stream():  # type: ignore[no-untyped-def]
            async with s.hub.subscribe(kinds, station) as receive:
                async for chunk in sse_stream(receive, hello={"node": s.coordinator.node_id}):
                    yield chunk

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return [Route("/live", live)]
