"""The OpenAPI document against the live server: valid, complete, enforced roles, and honest under a fuzzer.

The fuzzer is schemathesis, run as its CLI against the real port of the in-process replica (its engine is
synchronous and runs its own event loop, so a subprocess is the clean way to share the trio loop that serves).
It checks every response: no 5xx, status codes and content types the document lists, bodies matching the
documented schemas. Set CSMS_FUZZ_SEED to explore other inputs, CSMS_FUZZ_EXAMPLES for a longer run, and
CSMS_FUZZ_CHECKS (e.g. "all") for schemathesis' stricter checks.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
import trio
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR
from starlette.routing import Route

from csms.api import ApiServices, build_api, certificate_routes, openapi, security_routes, sites_routes
from csms.api.openapi import command_actions, openapi_document
from csms.commands import catalogue
from devcluster.station import SimulatedStation
from tests.integration.conftest import READ_TOKEN, TOKEN, Running

pytestmark = pytest.mark.integration

# The document's own parameter examples: seeded so that example-driven requests hit real rows.
STATION, PASSWORD, ID_TAG, TRANSACTION_ID, COMMAND_ID = "CP-1", "fuzz-password-1", "TAG-1", 1, 1
RESERVATION_ID, TEMPLATE, SITE = 1, "night-16A", "depot-1"
SITE_BODY = {"limit": 32, "unit": "A", "stations": [STATION]}
TEMPLATE_PROFILE = {
    "stackLevel": 1,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Relative",
    "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]},
}
FUZZ_CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# Routes that relay a station's answer use gateway statuses on purpose (documented, with the command record as
# body): 502 call error, 503 unknown outcome, 504 timeout. Any other 5xx, 500 included, is a failure.
FUZZ_CONFIG = """
[[operations]]
include-path-regex = "/commands/[A-Za-z]+$|/(local-list|rotate-password|security-profile|[a-z-]*certificate)$"
checks.not_a_server_error.expected-statuses = ["2xx", "4xx", "502", "503", "504"]
"""


@pytest.fixture
def replica_overrides() -> dict[str, str]:
    return {"CSMS_CALL_TIMEOUT": "5"}


@asynccontextmanager
async def seeded(csms: Running) -> AsyncIterator[SimulatedStation]:
    """A registered, connected, answering station with a transaction, an id tag, a command, a reservation and a
    charging-profile template on record."""
    await csms.put_station(STATION, password=PASSWORD)
    await csms.put_id_tag(ID_TAG, parent_id_tag="FLEET-1")
    async with SimulatedStation.connect(csms.ocpp_url, STATION, password=PASSWORD) as cp:
        await cp.boot()
        await cp.status(1, "Available")
        started = await cp.start_transaction(1, ID_TAG, meter_start=100)
        assert started["transactionId"] == TRANSACTION_ID
        await cp.meter_values(1, TRANSACTION_ID, 150)
        async with csms.api() as client:
            response = await client.post(f"/api/v1/stations/{STATION}/commands/ClearCache", json={})
            assert response.status_code == 200, response.text
            assert response.json()["id"] == COMMAND_ID
            reserve = {"connectorId": 1, "expiryDate": "2099-01-01T00:00:00Z", "idTag": ID_TAG}
            response = await client.post(f"/api/v1/stations/{STATION}/commands/ReserveNow", json=reserve)
            assert response.json()["payload"]["reservationId"] == RESERVATION_ID, response.text
            response = await client.put(f"/api/v1/charging-profiles/{TEMPLATE}", json=TEMPLATE_PROFILE)
            assert response.status_code == 201, response.text
            response = await client.put(f"/api/v1/sites/{SITE}", json=SITE_BODY)
            assert response.status_code == 201, response.text
        yield cp


def live_routes() -> list[Route]:
    """The routes build_api really serves (services are only captured at build time, so None stands in)."""
    placeholders: dict[str, Any] = {field.name: None for field in dataclasses.fields(ApiServices)}
    app = build_api(ApiServices(**{**placeholders, "api_tokens": ()}))
    return [route for route in app.routes if isinstance(route, Route)]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    methods = ("get", "put", "post", "delete", "patch")
    return [(path, m, item[m]) for path, item in document["paths"].items() for m in methods if m in item]


def check_documented(document: dict[str, Any], path: str, method: str, response: httpx.Response) -> None:
    """The status is one the operation lists, and the body matches the schema listed for it."""
    listed = document["paths"][path][method]["responses"]
    where = f"{method.upper()} {response.request.url}"
    assert str(response.status_code) in listed, f"{where}: undocumented {response.status_code} {response.text}"
    schemathesis.openapi.from_dict(document)[path][method.upper()].validate_response(response)


def concrete(path: str) -> str:
    values = {
        "station_id": STATION,
        "id_tag": ID_TAG,
        "transaction_id": TRANSACTION_ID,
        "command_id": COMMAND_ID,
        "reservation_id": RESERVATION_ID,
        "name": TEMPLATE,
        "site_id": SITE,
        "request_id": 1,
        "fingerprint": "0" * 64,
        "sink": "webhook",
    }
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)


async def test_document_is_valid_openapi_and_served_without_auth(csms: Running) -> None:
    async with csms.api(token="") as client:
        response = await client.get("/openapi.json", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document == openapi_document()
    errors = [str(error) for error in OPENAPI_31_VALIDATOR.iter_errors(document)]
    assert not errors, errors[:5]
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    refs = set(re.findall(r'"\$ref": ?"#/components/(\w+)/([\w.]+)"', response.text))
    assert refs, "no references: the pattern no longer matches the serialisation"
    for section, name in refs:
        assert name in document["components"][section], f"dangling $ref {section}/{name}"
    loaded = schemathesis.openapi.from_dict(document)
    loaded.validate()
    params = document["components"]["parameters"]
    examples = [
        params[name]["example"]
        for name in ("StationId", "IdTag", "TransactionId", "CommandId", "ReservationId", "TemplateName")
    ]
    assert examples == [STATION, ID_TAG, TRANSACTION_ID, COMMAND_ID, RESERVATION_ID, TEMPLATE], "seed the examples"


def test_every_live_route_is_documented() -> None:
    document = openapi_document()
    missing = []
    for route in live_routes():
        if route.path.startswith("/internal/"):
            continue  # replica-to-replica, deliberately not in the public document
        pattern = re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(route.path)) + "$")
        for method in sorted((route.methods or set()) - {"HEAD"}):
            documented = [p for p, m, _ in operations(document) if m == method.lower() and pattern.match(p)]
            if not documented:
                missing.append(f"{method} {route.path}")
    assert not missing, f"routes the document does not describe: {missing}"
    assert not [p for p in document["paths"] if p.startswith("/internal/")]


def test_the_document_and_the_server_share_one_route_table() -> None:
    """Every public route but the command sends (their bodies are the OCPP schemas) is an Operation: the same
    declaration makes the route, enforces its role and writes its entry in the document."""
    served = {
        (method, route.path)
        for route in live_routes()
        if not route.path.startswith("/internal/") and not route.path.endswith("/commands/{action}")
        for method in (route.methods or set()) - {"HEAD"}
    }
    declared = {(op.method, op.path) for op in openapi.DECLARED}
    # Served only with their services (sites, the security operations, a CA), which live_routes() leaves out.
    optional = {
        (op.method, op.path)
        for op in (*sites_routes.OPERATIONS, *security_routes.OPERATIONS, *certificate_routes.OPERATIONS)
    }
    assert served == declared - optional


PUT_BODIES = {
    "/api/v1/charging-profiles/{name}": TEMPLATE_PROFILE,
    "/api/v1/sites/{site_id}": SITE_BODY,
    "/api/v1/sites/{site_id}/limit": {"limit": 16, "duration": 60},
}


async def test_every_documented_operation_answers_with_its_documented_shape_and_role(csms: Running) -> None:
    document = openapi_document()
    async with seeded(csms), csms.api() as admin, csms.api(READ_TOKEN) as reader, csms.api("nope") as stranger:
        # Deletes last, the deepest paths first (a station's certificate before the station).
        ordered = sorted(operations(document), key=lambda op: (op[1] == "delete", -op[0].count("/")))
        for path, method, op in ordered:
            url = concrete(path)
            body = {"json": PUT_BODIES.get(path, {})} if method in ("put", "post") else {}
            role = op.get("x-required-role")
            if role is not None:
                denied = await stranger.request(method, url, **body)
                assert denied.status_code == 401, f"{method} {url} with a bad token: {denied.text}"
                as_reader = await reader.request(method, url, **body)
                if role == "operator":
                    assert as_reader.status_code == 403, f"{method} {url} as read: {as_reader.text}"
                else:
                    assert as_reader.status_code not in (401, 403), f"{method} {url} as read: {as_reader.text}"
            response = await admin.request(method, url, **body)
            expected = {"get": {200}, "put": {200}, "delete": {204}, "post": {200, 422}}[method]
            assert response.status_code in expected, f"{method.upper()} {url}: {response.status_code} {response.text}"
            check_documented(document, path, method, response)


# Inputs the fuzzer rarely or never sends (NUL characters, non-ASCII digits, instants at the edge of the calendar,
# integers past the column type, a trailing newline), each found to crash or slip through once: every one must
# get a documented 4xx. (template path, method, URL, JSON body)
EDGE_CASES: list[tuple[str, str, str, Any]] = [
    ("/api/v1/stations", "get", "/api/v1/stations?after=%00", None),
    ("/api/v1/stations", "get", "/api/v1/stations?limit=%C2%B2", None),
    ("/api/v1/id-tags", "get", "/api/v1/id-tags?after=%00", None),
    ("/api/v1/transactions", "get", "/api/v1/transactions?station_id=%00", None),
    ("/api/v1/transactions", "get", "/api/v1/transactions?before=%C2%B2", None),
    ("/api/v1/transactions", "get", "/api/v1/transactions?before=2147483648", None),
    ("/api/v1/transactions", "get", "/api/v1/transactions?since=0001-01-01T00:00:00%2B01:00", None),
    ("/api/v1/transactions/{transaction_id}", "get", "/api/v1/transactions/%C2%B2", None),
    ("/api/v1/commands", "get", "/api/v1/commands?action=%00", None),
    ("/api/v1/commands", "get", "/api/v1/commands?before=9223372036854775808", None),
    ("/api/v1/commands/{command_id}", "get", "/api/v1/commands/%C2%B2", None),
    ("/api/v1/commands/{command_id}", "get", "/api/v1/commands/9223372036854775808", None),
    ("/api/v1/reservations", "get", "/api/v1/reservations?station_id=%00", None),
    ("/api/v1/reservations", "get", "/api/v1/reservations?before=%C2%B2", None),
    ("/api/v1/reservations/{reservation_id}", "get", "/api/v1/reservations/%C2%B2", None),
    ("/api/v1/reservations/{reservation_id}", "get", "/api/v1/reservations/2147483648", None),
    ("/api/v1/charging-profiles/{name}", "get", "/api/v1/charging-profiles/%00", None),
    (
        "/api/v1/charging-profiles/{name}",
        "put",
        "/api/v1/charging-profiles/p",
        {**TEMPLATE_PROFILE, "stackLevel": 2**31},
    ),
    (
        "/api/v1/stations/{station_id}/commands/SetChargingProfile",
        "post",
        f"/api/v1/stations/{STATION}/commands/SetChargingProfile",
        {"connectorId": 1, "template": "a\u0000"},
    ),
    (
        "/api/v1/stations/{station_id}/commands/ReserveNow",
        "post",
        f"/api/v1/stations/{STATION}/commands/ReserveNow",
        {"connectorId": 1, "expiryDate": "2099-01-01T00:00:00Z", "idTag": "T", "reservationId": 2**31},
    ),
    ("/api/v1/id-tags/{id_tag}", "get", "/api/v1/id-tags/%00", None),
    ("/api/v1/id-tags/{id_tag}", "put", "/api/v1/id-tags/%00", {}),
    ("/api/v1/id-tags/{id_tag}", "put", "/api/v1/id-tags/TAG-2", {"parent_id_tag": "a\u0000"}),
    ("/api/v1/id-tags/{id_tag}", "put", "/api/v1/id-tags/TAG-3", {"expiry_date": "0001-01-01T00:00:00+01:00"}),
    ("/api/v1/id-tags/{id_tag}", "put", "/api/v1/id-tags/TAG-4", {"expiry_date": "9999-12-31T23:59:59-01:00"}),
    ("/api/v1/stations/{station_id}", "put", "/api/v1/stations/CP-2", {"description": "a\u0000b"}),
    ("/api/v1/stations/{station_id}", "put", "/api/v1/stations/abc%0A", {}),
    (
        "/api/v1/stations/{station_id}/commands/SetChargingProfile",
        "post",
        f"/api/v1/stations/{STATION}/commands/SetChargingProfile",
        {
            "connectorId": 0,
            "csChargingProfiles": {
                "chargingProfileId": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "ChargePointMaxProfile",
                "chargingProfileKind": "Absolute",
                "validFrom": "2020-01-01T00:00:00",
                "validTo": "2021-01-01T00:00:00Z",
                "chargingSchedule": {
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1}],
                },
            },
        },
    ),
]


async def test_edge_inputs_get_a_documented_client_error(csms: Running) -> None:
    document = openapi_document()
    await csms.put_station(STATION)
    failures = []
    async with csms.api() as client:
        for path, method, url, body in EDGE_CASES:
            response = await client.request(method, url, **({} if body is None else {"json": body}))
            try:
                assert 400 <= response.status_code < 500, f"{response.status_code} {response.text}"
                check_documented(document, path, method, response)
            except AssertionError as exc:
                failures.append(f"{method.upper()} {url} {body or ''}: {str(exc).splitlines()[0]}")
    assert not failures, "\n".join(failures)


async def test_unknown_command_is_refused_naming_exactly_the_documented_actions(csms: Running) -> None:
    await csms.put_station(STATION)
    async with csms.api() as client:
        response = await client.post(f"/api/v1/stations/{STATION}/commands/Heartbeat", json={})
    assert response.status_code == 422
    allowed = response.json()["error"]["details"]["allowed"]  # never connected: every version's catalogue
    assert allowed == catalogue() and set(allowed) == {"ocpp1.6", "ocpp2.0.1"}
    assert sorted({action for actions in allowed.values() for action in actions}) == command_actions()


async def test_schemathesis_finds_no_server_error_and_no_undocumented_response(csms: Running, tmp_path: Path) -> None:
    seed = os.environ.get("CSMS_FUZZ_SEED", "20261127")
    examples = os.environ.get("CSMS_FUZZ_EXAMPLES", "12")
    config = tmp_path / "schemathesis.toml"
    config.write_text(FUZZ_CONFIG)
    args = [
        str(Path(sys.executable).with_name("st")),
        f"--config-file={config}",
        "--no-color",
        "run",
        f"{csms.api_url}/openapi.json",
        f"--header=Authorization: Bearer {TOKEN}",
        f"--checks={os.environ.get('CSMS_FUZZ_CHECKS', FUZZ_CHECKS)}",
        "--phases=examples,coverage,fuzzing",
        f"--max-examples={examples}",
        f"--seed={seed}",
        # One worker: with two threads, hypothesis's concurrent ast.parse calls trip CPython 3.11's shared AST
        # recursion counter ("SystemError: AST constructor recursion depth mismatch", python/cpython#106905).
        "--workers=1",
        "--request-timeout=20",
        "--max-failures=30",
        "--suppress-health-check=all",
        "--warnings=off",
        "--output-truncate=false",
    ]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "SCHEMATHESIS_HOOKS": ""}
    async with seeded(csms):
        # ~60 s on a quiet 2-core machine before the 2.0.1 commands; they add 26 operations with deep bodies
        # (~80 s of CPU in all, ~300 s wall at a load average of 13).
        with trio.fail_after(400):
            result = await trio.run_process(
                args, capture_stdout=True, capture_stderr=True, check=False, cwd=tmp_path, env=env
            )
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, f"schemathesis (seed {seed}) found problems:\n{output[-20000:]}"
