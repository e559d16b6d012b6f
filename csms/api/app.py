"""The REST API (ASGI): stations, transactions, id tags, cluster view, health and metrics.

Any replica serves any request: reads come from Postgres, "connected" and "owner" from the coordinator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cluster import Coordinator
from csms.api.auth import TokenAuth
from csms.api.certificate_routes import certificate_routes
from csms.api.charging_profiles_routes import charging_profile_routes
from csms.api.command_payloads import CommandPayloads
from csms.api.commands_routes import command_routes
from csms.api.devicemodel_routes import devicemodel_routes
from csms.api.errors import ApiError, error_response, handle_api_error
from csms.api.events_routes import events_routes
from csms.api.internal_routes import Shed, internal_routes
from csms.api.models.bodies import IdTagPut, StationPut
from csms.api.openapi import openapi_endpoint
from csms.api.operations_routes import operations_routes
from csms.api.responses import JsonResponse
from csms.api.security_routes import security_routes
from csms.api.sites_routes import site_routes
from csms.api.transactions_routes import transaction_routes
from csms.api.validation import json_body, page_limit, parse, parse_id, path_station_id
from csms.authorization import IdTagStore
from csms.central_system.certificates import StationCertificates
from csms.central_system.security_operations import SecurityOperations
from csms.commands import CommandService
from csms.devicemodel import DeviceModelViews
from csms.observability import Metrics
from csms.operations import OperationsViews, ProfileTemplates
from csms.outbox import ExportStore, OutboxReader
from csms.sites import SiteService
from csms.stations import StationRegistry, hash_password
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


Readiness = Callable[[], Awaitable[dict[str, bool]]]


@dataclass
class ApiServices:
    registry: StationRegistry
    ledger: TransactionLedger
    id_tags: IdTagStore
    coordinator: Coordinator
    metrics: Metrics
    readiness: Readiness
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

    async def healthz(request: Request) -> Response:
        return JsonResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        checks = await s.readiness()
        ready = all(checks.values())
        return JsonResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(s.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def with_owner(station: dict[str, Any]) -> dict[str, Any]:
        owner = await s.coordinator.owner_of(station["id"])
        station["connected"] = owner is not None
        station["owner_node"] = owner.node_id if owner else None
        return station

    async def list_stations(request: Request) -> Response:
        auth.require(request, "read")
        limit = page_limit(request)
        after = request.query_params.get("after", "")
        items = await s.registry.page(limit=limit, after=after)
        owners = await s.coordinator.owners_of([item["id"] for item in items])  # one etcd read per page
        for item in items:
            owner = owners.get(item["id"])
            item["connected"] = owner is not None
            item["owner_node"] = owner.node_id if owner else None
        next_after = items[-1]["id"] if len(items) == limit else None
        return JsonResponse({"items": items, "next": next_after})

    async def get_station(request: Request) -> Response:
        auth.require(request, "read")
        station_id = path_station_id(request)
        station = await s.registry.get(station_id)
        if station is None:
            raise ApiError(404, "not_found", f"station {station_id} is not registered")
        station = await with_owner(station)
        station.update(await s.registry.security.security_state(station_id) or {})
        station["open_transactions"] = await s.ledger.open_transactions(station_id)
        station["notifications"] = await s.registry.notifications(station_id, limit=20)
        return JsonResponse(station)

    async def station_events(request: Request) -> Response:
        """What a station reported beyond transactions (2.0.1 Notify*, security events, ...), newest first."""
        auth.require(request, "read")
        station_id = path_station_id(request)
        limit = page_limit(request)
        action = request.query_params.get("action")
        if action is not None and not (action.isascii() and action.isalnum() and len(action) <= 64):
            raise ApiError(400, "bad_request", "action must be an OCPP action name (letters and digits)")
        before = parse_id(request.query_params.get("before"), "before")
        items = await s.registry.events(station_id, action=action, limit=limit, before_id=before)
        next_before = items[-1]["id"] if len(items) == limit else None
        return JsonResponse({"items": items, "next": next_before})

    async def put_station(request: Request) -> Response:
        auth.require(request, "operator")
        station_id = path_station_id(request)
        body = parse(StationPut, await json_body(request))
        given = body.model_fields_set
        password, profile = body.password, body.security_profile
        password_hash = await hash_password(password, s.password_iterations) if password else None
        if profile in (1, 2) and not password:
            state = await s.registry.security.security_state(station_id)
            if not (state and state["has_password"]) or ("password" in given and password is None):
                raise ApiError(422, "invalid", f"security_profile {profile} needs a password (Basic auth)")
        created = await s.registry.put(
            station_id,
            password_hash=password_hash,
            set_password="password" in given,
            boot_status=body.boot_status,
            set_boot_status="boot_status" in given,
            description=None if "description" not in given else body.description or "",
        )
        if "security_profile" in given:
            await s.registry.security.set_profile(station_id, profile)
        station = await s.registry.get(station_id)
        assert station is not None
        return JsonResponse(await with_owner(station), status_code=201 if created else 200)

    async def delete_station(request: Request) -> Response:
        auth.require(request, "operator")
        station_id = path_station_id(request)
        if not await s.registry.delete(station_id):
            raise ApiError(404, "not_found", f"station {station_id} is not registered")
        return Response(status_code=204)

    async def list_id_tags(request: Request) -> Response:
        auth.require(request, "read")
        limit = page_limit(request)
        tags = await s.id_tags.page(limit=limit, after=request.query_params.get("after", ""))
        next_after = tags[-1].id_tag if len(tags) == limit else None
        return JsonResponse({"items": [t.as_json() for t in tags], "next": next_after})

    def path_id_tag(request: Request) -> str:
        id_tag = request.path_params["id_tag"]
        if not 1 <= len(id_tag) <= 36 or "\x00" in id_tag:
            raise ApiError(400, "bad_request", "an id tag is 1-36 characters (OCPP 2.0.1 IdToken; 1.6 uses 1-20)")
        return str(id_tag)

    async def get_id_tag(request: Request) -> Response:
        auth.require(request, "read")
        id_tag = path_id_tag(request)
        tag = await s.id_tags.get(id_tag)
        if tag is None:
            raise ApiError(404, "not_found", f"id tag {id_tag} does not exist")
        return JsonResponse(tag.as_json())

    async def put_id_tag(request: Request) -> Response:
        auth.require(request, "operator")
        id_tag = path_id_tag(request)
        body = parse(IdTagPut, await json_body(request))
        tag, created = await s.id_tags.put(id_tag, body.status, body.expiry_date, body.parent_id_tag, body.type)
        return JsonResponse(tag.as_json(), status_code=201 if created else 200)

    async def delete_id_tag(request: Request) -> Response:
        auth.require(request, "operator")
        id_tag = path_id_tag(request)
        if not await s.id_tags.delete(id_tag):
            raise ApiError(404, "not_found", f"id tag {id_tag} does not exist")
        return Response(status_code=204)

    async def cluster_view(request: Request) -> Response:
        auth.require(request, "read")
        c = s.coordinator
        nodes = await c.nodes()
        counts = await c.owned_counts()
        return JsonResponse(
            {
                "node_id": c.node_id,
                "leader": c.leader_id,
                "healthy": c.healthy,
                "nodes": [
                    {
                        "node_id": n.node_id,
                        "address": n.address,
                        "version": n.version,
                        "started_at": n.started_at,
                        "stations": counts.get(n.node_id, 0),
                    }
                    for n in nodes
                ],
            }
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = "not_found" if exc.status_code == 404 else "method_not_allowed" if exc.status_code == 405 else "error"
        response = error_response(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})  # 405 must say Allow (RFC 9110)
        return response

    async def internal_error(request: Request, exc: Exception) -> Response:
        return error_response(500, "internal_error", "internal error; see the replica's log")

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/openapi.json", openapi_endpoint),
        Route("/api/v1/stations", list_stations),
        Route("/api/v1/stations/{station_id}", get_station),
        Route("/api/v1/stations/{station_id}", put_station, methods=["PUT"]),
        Route("/api/v1/stations/{station_id}", delete_station, methods=["DELETE"]),
        Route("/api/v1/stations/{station_id}/events", station_events),
        *transaction_routes(auth, s.ledger),
        Route("/api/v1/id-tags", list_id_tags),
        Route("/api/v1/id-tags/{id_tag}", get_id_tag),
        Route("/api/v1/id-tags/{id_tag}", put_id_tag, methods=["PUT"]),
        Route("/api/v1/id-tags/{id_tag}", delete_id_tag, methods=["DELETE"]),
        Route("/api/v1/cluster", cluster_view),
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
