"""Station certificate management: renewal, CSR export and signed-certificate import (external-CA mode)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.command_status import HTTP_STATUS
from csms.api.errors import ApiError
from csms.api.responses import JsonResponse
from csms.api.validation import bad, json_body, page_limit, parse_id, path_station_id, reject_unknown
from csms.central_system.certificates import StationCertificates
from csms.stations import SecurityStore
from csms.stations.certificate_authority import CertificateRejected

REQUEST_STATUSES = ("pending", "signed", "delivered", "failed")
MAX_CHAIN = 10_000  # CertificateSigned.req certificateChain limit


def certificate_routes(auth: TokenAuth, store: SecurityStore, certificates: StationCertificates) -> list[Route]:
    async def renew(request: Request) -> Response:
        role = auth.require(request, "operator")
        station_id = path_station_id(request)
        if await store.security_state(station_id) is None:
            raise ApiError(404, "not_found", f"station {station_id} is not registered")
        record = await certificates.renew(station_id, f"token:{role}")
        return JsonResponse(
            {"ca_mode": certificates.mode, "command": record}, status_code=HTTP_STATUS[record["status"]]
        )

    async def list_requests(request: Request) -> Response:
        auth.require(request, "read")
        status = request.query_params.get("status")
        if status is not None and status not in REQUEST_STATUSES:
            raise ApiError(400, "bad_request", f"status must be one of {', '.join(REQUEST_STATUSES)}")
        items = await store.requests(status, page_limit(request))
        return JsonResponse({"ca_mode": certificates.mode, "items": items})

    async def import_certificate(request: Request) -> Response:
        auth.require(request, "operator")
        request_id = parse_id(str(request.path_params["request_id"]), "request id")
        assert request_id is not None
        body = await json_body(request)
        reject_unknown(body, {"certificate_chain"})
        chain = body.get("certificate_chain")
        if not isinstance(chain, str) or not 0 < len(chain) <= MAX_CHAIN:
            raise bad(f"certificate_chain must be PEM text of at most {MAX_CHAIN} characters")
        try:
            record = await certificates.import_signed(request_id, chain)
        except LookupError:
            raise ApiError(404, "not_found", f"certificate request {request_id} does not exist") from None
        except CertificateRejected as exc:
            raise bad(str(exc)) from None
        return JsonResponse({"command": record}, status_code=HTTP_STATUS[record["status"]])

    return [
        Route("/api/v1/stations/{station_id}/renew-certificate", renew, methods=["POST"]),
        Route("/api/v1/certificate-requests", list_requests),
        Route("/api/v1/certificate-requests/{request_id}/certificate", import_certificate, methods=["POST"]),
    ]
