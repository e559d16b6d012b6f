"""The REST API (ASGI): stations, transactions, id tags, cluster view, health and metrics.

Any replica serves any request: reads come from Postgres, "connected" and "owner" from the coordinator.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from cluster import Coordinator
from csms.api.auth import TokenAuth
from csms.api.certificate_routes import certificate_routes
from csms.api.charging_profiles_routes import charging_profile_routes
from csms.api.command_payloads import CommandPayloads
from csms.api.commands_routes import command_routes
from csms.api.contract import route
from csms.api.devicemodel_routes import devicemodel_routes
from csms.api.errors import ApiError, error_response, handle_api_error
from csms.api.events_routes import events_routes
from csms.api.health_routes import ReadinessCheck, health_routes
from csms.api.id_tags_routes import id_tag_routes
from csms.api.internal_routes import Shed, internal_routes
from csms.api.openapi import OPENAPI, openapi_endpoint
from csms.api.operations_routes import operations_routes
from csms.api.security_routes import security_routes
from csms.api.sites_routes import site_routes
from csms.api.stations_routes import station_routes
from csms.api.transactions_routes import transaction_routes
from csms.authorization import IdTagStore
from csms.central_system.certificates import StationCertificates
from csms.central_system.security_operations import SecurityOperations
from csms.commands import CommandService
from csms.devicemodel import DeviceModelViews
from csms.observability import Metrics
from csms.operations import OperationsViews, ProfileTemplates
from csms.outbox import ExportStore, OutboxReader
from csms.sites import SiteService
from csms.stations import StationRegistry
from csms.transactions import TransactionLedger


class RejectUnreadableUrl:
    """Path ids and query parameters must percent-decode to UTF-8 text without NUL: the server would otherwise
    replace bad bytes with U+FFFD (``/id-tags/%FF`` would name a tag "\ufffd") and Postgres text cannot hold NUL.
    One check here covers every route, present and future: a 400 naming the part, never a lookup or a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            for part, raw in (("the path", raw_path), ("query parameters", scope.get("query_string", b""))):
                if not _readable(raw):
                    message = f"{part} must percent-decode to UTF-8 text without NUL"
                    await error_response(400, "bad_request", message)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _readable(raw: bytes) -> bool:
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return "\x00" not in text


@dataclass
class ApiServices:
    registry: StationRegistry
    ledger: TransactionLedger
    id_tags: IdTagStore
    coordinator: Coordinator
    metrics: Metrics
    readiness: ReadinessCheck
    api_tokens: tuple[str, ...]
    commands: CommandService
    operations: OperationsViews
    profile_templates: ProfileTemplates
    device_model: DeviceModelViews
    shed: Shed
    events: OutboxReader
    exports: ExportStore
    security: SecurityOperations | None = None
    certificates: StationCertificates | None = None
    internal_secret: str = ""
    password_iterations: int = 20_000
    console: ASGIApp | None = None  # the operator console, mounted at /ui
    sites: SiteService | None = None  # site load management (absent in tests that build the API alone)


def build_api(services: ApiServices) -> Starlette:
    auth = TokenAuth(services.api_tokens)
    s = services

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = "not_found" if exc.status_code == 404 else "method_not_allowed" if exc.status_code == 405 else "error"
        response = error_response(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})  # 405 must say Allow (RFC 9110)
        return response

    async def internal_error(request: Request, exc: Exception) -> Response:
        return error_response(500, "internal_error", "internal error; see the replica's log")

    routes: list[BaseRoute] = [
        *health_routes(auth, s.readiness, s.metrics, s.coordinator),
        route(OPENAPI, auth, openapi_endpoint),
        *station_routes(auth, s.registry, s.ledger, s.coordinator, s.password_iterations),
        *transaction_routes(auth, s.ledger),
        *id_tag_routes(auth, s.id_tags),
        *command_routes(auth, s.commands, s.registry, CommandPayloads(s.operations, s.profile_templates)),
        *charging_profile_routes(auth, s.profile_templates, s.commands),
        *operations_routes(auth, s.operations, s.registry, s.id_tags, s.commands),
        *devicemodel_routes(auth, s.device_model, s.registry),
        *internal_routes(s.internal_secret, s.commands, s.shed),
        *(site_routes(auth, s.sites) if s.sites is not None else []),
        *(security_routes(auth, s.registry.security, s.security) if s.security is not None else []),
        *(certificate_routes(auth, s.registry.security, s.certificates) if s.certificates is not None else []),
        *events_routes(auth, s.events, s.exports),
    ]
    if s.console is not None:
        routes.append(Mount("/ui", app=s.console))
    return Starlette(
        middleware=[Middleware(RejectUnreadableUrl)],
        routes=routes,
        exception_handlers={ApiError: handle_api_error, HTTPException: not_found, Exception: internal_error},
    )


__all__ = ["ApiServices", "build_api"]
