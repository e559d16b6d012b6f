"""Station certificate management: renewal, CSR export and signed-certificate import (external-CA mode)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.api.auth import TokenAuth
from csms.api.command_status import HTTP_STATUS
from csms.api.contract import Answer, Operation, query, route
from csms.api.errors import ApiError
from csms.api.models.security import (
    CertificateDelivery,
    CertificateImport,
    CertificateRenewal,
    CertificateRequestList,
    CertificateRequestQuery,
)
from csms.api.responses import JsonResponse
from csms.api.security_routes import RELAYED
from csms.api.validation import bad, json_body, parse, parse_id, path_station_id
from csms.central_system.certificates import StationCertificates
from csms.stations import SecurityStore
from csms.stations.certificate_authority import CertificateRejected

TAG = "security"
RENEW = Operation(
    "POST", "/api/v1/stations/{station_id}/renew-certificate", "renewStationCertificate", TAG,
    "Ask the station for a CSR (ExtendedTriggerMessage SignChargePointCertificate)", "operator",
    {200: Answer(CertificateRenewal, "The station accepted."), **RELAYED}, (400, 404), path_params=("StationId",),
)  # fmt: skip
REQUESTS = Operation(
    "GET", "/api/v1/certificate-requests", "listCertificateRequests", TAG,
    "Station CSRs (export them to an external CA when ca_mode is external)", "read",
    {200: Answer(CertificateRequestList, "Newest first.")}, (400,), query=CertificateRequestQuery,
)  # fmt: skip
IMPORT = Operation(
    "POST", "/api/v1/certificate-requests/{request_id}/certificate", "importSignedCertificate", TAG,
    "Import the chain an external CA signed for a pending CSR, and send it to the station", "operator",
    {200: Answer(CertificateDelivery, "Delivered."), **RELAYED}, (400, 404, 413, 422), path_params=("RequestId",),
    body=CertificateImport, body_required=True,
)  # fmt: skip
OPERATIONS = (RENEW, REQUESTS, IMPORT)


def certificate_routes(auth: TokenAuth, store: SecurityStore, certificates: StationCertificates) -> list[Route]:
    async def renew(request: Request) -> Response:
        station_id = path_station_id(request)
        if await store.security_state(station_id) is None:
            raise ApiError(404, "not_found", f"station {station_id} is not registered")
        record = await certificates.renew(station_id, request.state.actor)
        return JsonResponse(
            {"ca_mode": certificates.mode, "command": record}, status_code=HTTP_STATUS[record["status"]]
        )

    async def list_requests(request: Request) -> Response:
        q = query(request, CertificateRequestQuery)
        items = await store.requests(q.status, q.limit)
        return JsonResponse({"ca_mode": certificates.mode, "items": items})

    async def import_certificate(request: Request) -> Response:
        request_id = parse_id(str(request.path_params["request_id"]), "request id")
        assert request_id is not None
        chain = parse(CertificateImport, await json_body(request)).certificate_chain
        try:
            record = await certificates.import_signed(request_id, chain)
        except LookupError:
            raise ApiError(404, "not_found", f"certificate request {request_id} does not exist") from None
        except CertificateRejected as exc:
            raise bad(str(exc)) from None
        return JsonResponse({"command": record}, status_code=HTTP_STATUS[record["status"]])

    return [route(RENEW, auth, renew), route(REQUESTS, auth, list_requests), route(IMPORT, auth, import_certificate)]
