"""The OpenAPI 3.1 document of the public REST API, served at /openapi.json.

Made from what the server itself checks with (docs/design/api-contract.md): the route table's operations
(csms.api.contract) and the pydantic models (csms.api.models) for every route but the command sends, whose
payloads are the `ocpp` package's own OCPP 1.6 and 2.0.1 JSON schemas, the same files the server validates
with (components `OCPP16.*` and `OCPP201.*`). `tests/integration/test_openapi.py` checks it against the live
routes and fuzzes the server with it. Replica-to-replica routes (/internal/v1/...) are left out on purpose: they
need the shared internal secret and are no client's business.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from csms.api import (
    certificate_routes,
    charging_profiles_routes,
    commands_routes,
    devicemodel_routes,
    events_routes,
    health_routes,
    id_tags_routes,
    operations_routes,
    security_routes,
    sites_routes,
    stations_routes,
    transactions_routes,
)
from csms.api.charging_profiles_routes import TEMPLATE_NAME
from csms.api.command_payloads import REQUEST_ID_ACTIONS
from csms.api.command_status import ASYNC_OUTCOME, OUTCOMES
from csms.api.contract import Answer, Operation
from csms.api.models.fields import INT32_MAX, INT64_MAX
from csms.api.models.queries import CommandSendQuery
from csms.api.models.schemas import component_schemas, component_schemas_of
from csms.api.validation import MAX_BODY_BYTES, STATION_ID
from csms.commands import catalogue
from csms.ocpp.schemas import _DATE_TIME
from csms.sites import SITE_ID_PATTERN

Schema = dict[str, Any]


def command_actions() -> list[str]:
    """Every action the CSMS may send in some OCPP version (the union of the per-version catalogues)."""
    return sorted({action for actions in catalogue().values() for action in actions})


# Per protocol: the schema directory, the request file's suffix, and the components' prefix.
_OCPP_SCHEMAS = {"ocpp1.6": ("v16", "", "OCPP16"), "ocpp2.0.1": ("v201", "Request", "OCPP201")}


def _schema_file(protocol: str, action: str, kind: str) -> Any:
    directory, suffix, _ = _OCPP_SCHEMAS[protocol]
    name = f"{action}{suffix}.json" if kind == "Request" else f"{action}Response.json"
    return importlib.resources.files("ocpp") / directory / "schemas" / name


def _protocols_of(action: str) -> list[str]:
    return [protocol for protocol, actions in catalogue().items() if action in actions]


# ------------------------------------------------------------------------------------------- schema helpers

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
OBJ: Schema = {"type": "object"}


def _null(schema: Schema) -> Schema:
    if "anyOf" in schema:
        return {"anyOf": [*schema["anyOf"], {"type": "null"}]}
    if "$ref" in schema or "enum" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    return {**schema, "type": [schema["type"], "null"]}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    """A closed object: every listed field is always present (unless optional), nothing else is."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [key for key in properties if key not in optional],
        "properties": properties,
    }


def _command_record(payload: Schema, result: Schema) -> Schema:
    """The generated CommandRecord with one action's request and answer schemas in it."""
    record = copy.deepcopy(component_schemas()["CommandRecord"])
    record["properties"]["payload"] = payload
    record["properties"]["result"] = _null(result)
    return record


# ------------------------------------------------------------------------------------------ OCPP schemas

_DROP = frozenset({"$schema", "$id", "id", "javaType"})


def _clean(schema: Any, prefix: str) -> Any:
    """Draft-04 file -> OpenAPI 3.1 schema: local `#/definitions/X` refs point at hoisted components."""
    if not isinstance(schema, dict):
        return schema
    out: Schema = {}
    for key, value in schema.items():
        if key in _DROP or (key == "additionalItems" and isinstance(schema.get("items"), dict)):
            continue  # additionalItems means nothing beside a single `items` schema
        if key == "format" and value == "date-time":
            # The server checks OCPP date-times with its own, laxer pattern (the offset may be missing, as much
            # firmware sends it); documenting `format: date-time` would promise a check it does not make.
            out["pattern"] = _DATE_TIME.pattern
            out.setdefault("description", "RFC 3339 date-time; without an offset it is taken as UTC.")
        elif key == "$ref":
            out[key] = str(value).replace("#/definitions/", f"#/components/schemas/{prefix}.")
        elif key in ("properties", "patternProperties"):
            out[key] = {name: _clean(sub, prefix) for name, sub in value.items()}
        elif key in ("allOf", "anyOf", "oneOf") or (key == "items" and isinstance(value, list)):
            out[key] = [_clean(sub, prefix) for sub in value]
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _clean(value, prefix)
        else:
            out[key] = value
    return out


def _server_filled(ocpp: dict[str, Schema]) -> dict[str, Schema]:
    """Command bodies that may leave a field to the server (csms.api.command_payloads), and the template body."""
    reserve = copy.deepcopy(ocpp["OCPP16.ReserveNowRequest"])
    reserve["required"].remove("reservationId")
    reserve["description"] = "ReserveNow.req; without reservationId the server assigns one (unique, int32)."
    set_profile = ocpp.pop("OCPP16.SetChargingProfileRequest")
    profile = set_profile["properties"]["csChargingProfiles"]
    set_profile["properties"]["csChargingProfiles"] = _ref("OCPP16.SetChargingProfileRequest.csChargingProfiles")
    template = copy.deepcopy(profile)
    del template["properties"]["transactionId"]
    template["required"].remove("chargingProfileId")
    template["description"] = (
        "A csChargingProfiles object (OCPP 1.6) without transactionId, which is given when it is used. Without"
        " chargingProfileId the template gets a stable one of its own (from 1000000000 up). Checked by the"
        " SetChargingProfile rules (422 naming the field); the connector is checked when the template is used."
    )
    use = _object({"connectorId": INT, "template": {"type": "string", "pattern": TEMPLATE_NAME.pattern}})
    use["properties"]["transactionId"] = {**INT, "description": "For a TxProfile template."}
    use["description"] = "SetChargingProfile with a named template instead of an inline csChargingProfiles."
    use_201 = _object({"evseId": INT, "template": {"type": "string", "pattern": TEMPLATE_NAME.pattern}})
    use_201["properties"]["transactionId"] = {**STR, "description": "For a TxProfile template."}
    use_201["description"] = (
        "OCPP 2.0.1 SetChargingProfile with a named template: sent as its 2.0.1 chargingProfile (one schedule, id 1;"
        " ChargePointMaxProfile as ChargingStationMaxProfile); 422 for an Absolute or Recurring template without"
        " startSchedule, which 2.0.1 requires."
    )
    filled_201 = {
        action: _without(ocpp, f"OCPP201.{action}Request", field, f"{action}Request; without {field} {why}")
        for action, field, why in _FILLED_V201
    }
    return {
        **ocpp,
        "OCPP16.SetChargingProfileRequest": set_profile,
        "OCPP16.SetChargingProfileRequest.csChargingProfiles": profile,
        "ReserveNowCommand": reserve,
        "ChargingProfileTemplatePut": template,
        "SetChargingProfileFromTemplate": use,
        "SetChargingProfileFromTemplate201": use_201,
        **{f"{action}Command201": schema for action, schema in filled_201.items()},
    }


def _without(ocpp: dict[str, Schema], name: str, field: str, description: str) -> Schema:
    schema = copy.deepcopy(ocpp[name])
    schema["required"].remove(field)
    schema["description"] = description
    return schema


_SEQUENCE = "the server assigns one from a Postgres sequence (unique per station); it is in the answer's payload."
# OCPP 2.0.1 bodies whose id the server fills (csms.api.command_payloads).
_FILLED_V201 = [
    ("ReserveNow", "id", "the server assigns one (as for 1.6's reservationId); it is in the answer's payload."),
    ("RequestStartTransaction", "remoteStartId", _SEQUENCE),
    *((action, "requestId", _SEQUENCE) for action in sorted(REQUEST_ID_ACTIONS)),
]

# Bodies the server may complete (csms.api.command_payloads), per protocol; others are sent as given.
_COMMAND_BODIES = {
    "ocpp1.6": {
        "ReserveNow": [_ref("ReserveNowCommand")],
        "SetChargingProfile": [_ref("OCPP16.SetChargingProfileRequest"), _ref("SetChargingProfileFromTemplate")],
    },
    "ocpp2.0.1": {
        "SetChargingProfile": [_ref("OCPP201.SetChargingProfileRequest"), _ref("SetChargingProfileFromTemplate201")],
        **{action: [_ref(f"{action}Command201")] for action, _, _ in _FILLED_V201},
    },
}


def _command_body(action: str) -> Schema:
    bodies: list[Schema] = []
    for protocol in _protocols_of(action):
        prefix = _OCPP_SCHEMAS[protocol][2]
        default = [_ref(f"{prefix}.{action}Request")]
        bodies += _COMMAND_BODIES[protocol].get(action, default)
    return _either(bodies)


def _either(refs: list[Schema]) -> Schema:
    return refs[0] if len(refs) == 1 else {"anyOf": refs}


def _ocpp_schemas(actions: list[str]) -> dict[str, Schema]:
    out: dict[str, Schema] = {}
    for action in actions:
        requests, responses = [], []
        for protocol in _protocols_of(action):
            prefix = _OCPP_SCHEMAS[protocol][2]
            for kind in ("Request", "Response"):
                raw = json.loads(_schema_file(protocol, action, kind).read_text(encoding="utf-8-sig"))
                name = f"{prefix}.{action}{kind}"
                for def_name, sub in raw.pop("definitions", {}).items():
                    out[f"{name}.{def_name}"] = _clean(sub, name)
                out[name] = _clean(raw, name)
            requests.append(_ref(f"{prefix}.{action}Request"))
            responses.append(_ref(f"{prefix}.{action}Response"))
        out[f"CommandRecord.{action}"] = _command_record(_either(requests), _either(responses))
    return out


# ---------------------------------------------------------------------------------------------- operations


def _param(name: str, where: str, schema: Schema, description: str, example: Any = None) -> Schema:
    param: Schema = {"name": name, "in": where, "required": where == "path", "schema": schema}
    param["description"] = description
    if example is not None:
        param["example"] = example
    return param


_PARAMS: dict[str, Schema] = {
    "StationId": _param(
        "station_id",
        "path",
        {"type": "string", "pattern": STATION_ID.pattern},
        "The station's identity (the last path segment it connects with): 1-48 of A-Z a-z 0-9 . _ ~ -",
        "CP-1",
    ),
    "IdTag": _param(
        "id_tag",
        "path",
        {"type": "string", "minLength": 1, "maxLength": 36, "pattern": "^[^/]*$"},
        "An OCPP IdToken: 1-20 characters (a path segment, so no '/').",
        "TAG-1",
    ),
    "TransactionId": _param(
        "transaction_id", "path", {"type": "integer", "minimum": 0, "maximum": INT32_MAX}, "A transactionId.", 1
    ),
    "ReservationId": _param(
        "reservation_id", "path", {"type": "integer", "minimum": 0, "maximum": INT32_MAX}, "A reservationId.", 1
    ),
    "TemplateName": _param(
        "name",
        "path",
        {"type": "string", "pattern": TEMPLATE_NAME.pattern},
        "A charging-profile template's name: 1-64 of A-Z a-z 0-9 . _ ~ -",
        "night-16A",
    ),
    "SiteId": _param(
        "site_id",
        "path",
        {"type": "string", "pattern": SITE_ID_PATTERN},
        "A site's id: 1-64 of A-Z a-z 0-9 . _ ~ -",
        "depot-1",
    ),
    "Sink": _param("sink", "path", {"type": "string", "minLength": 1, "maxLength": 100}, "A sink name.", "webhook"),
    "Fingerprint": _param("fingerprint", "path", {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}, "SHA-256"),
    "RequestId": _param("request_id", "path", {"type": "integer", "minimum": 0, "maximum": INT64_MAX}, "Id"),
    "CommandId": _param(
        "command_id", "path", {"type": "integer", "minimum": 0, "maximum": INT64_MAX}, "A command id.", 1
    ),
}


def _p(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> Schema:
    return _json(_ref("Error"), description)


_RESPONSES: dict[str, Schema] = {
    "BadRequest": _error(
        "bad_request: a path or query parameter is malformed; bad_json: the body is not a JSON object."
    ),
    "Unauthorized": _error("unauthorized: no bearer token, or not a valid one."),
    "Forbidden": _error("forbidden: the token's role may not do this (needs operator)."),
    "NotFound": _error("not_found: no such resource."),
    "TooLarge": _error(f"too_large: the request body is over {MAX_BODY_BYTES} bytes."),
    "Invalid": _error("invalid: the body is well-formed JSON but breaks the schema; the message names the field."),
}


def _r(name: str) -> Schema:
    return {"$ref": f"#/components/responses/{name}"}


def _op(
    op_id: str,
    tag: str,
    summary: str,
    role: str | None,
    responses: dict[str, Schema],
    *,
    params: tuple[Schema, ...] = (),
    body: Schema | None = None,
    body_required: bool = False,
) -> Schema:
    """One operation; a role adds bearer security and the 401 (and the 403 for operator) it implies."""
    op: Schema = {"operationId": op_id, "tags": [tag], "summary": summary}
    if role is None:
        op["security"] = []
        op["description"] = "No authentication."
    else:
        op["security"] = [{"bearerAuth": []}]
        op["description"] = f"Role: **{role}** (or higher)."
        op["x-required-role"] = role
        responses = {**responses, "401": _r("Unauthorized")}
        if role == "operator":
            responses["403"] = _r("Forbidden")
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = {
            "required": body_required,
            "description": "A JSON object; an empty body counts as {}.",
            "content": {"application/json": {"schema": body}},
        }
    op["responses"] = dict(sorted(responses.items()))
    return op


def _command_outcomes(record: Schema, *, with_async: bool) -> dict[str, Schema]:
    outcomes = {**OUTCOMES, **({202: ASYNC_OUTCOME} if with_async else {})}
    return {str(code): _json(record, f"The command record. {text}") for code, text in outcomes.items()}


# Rules the OCPP JSON schemas cannot express, checked before sending (csms.operations.validation): 422.
_EXTRA_RULES: dict[tuple[str, str], str] = {
    (
        "ocpp1.6",
        "SetChargingProfile",
    ): "connectorId >= 0, and the charging profile rules of OCPP 1.6 section 3.13: stackLevel"
    " and chargingProfileId >= 0; ChargePointMaxProfile only on connector 0, TxProfile only on a connector > 0;"
    " transactionId only on a TxProfile; recurrencyKind exactly on Recurring profiles; no startSchedule on a"
    " Relative profile; validFrom before validTo; periods start at 0 and increase, limits >= 0, numberPhases"
    " 1-3; duration > 0; minChargingRate >= 0; chargingProfileId, stackLevel and transactionId fit 32 bits."
    " Instead of csChargingProfiles the body may name a template (PUT /api/v1/charging-profiles/{name}):"
    ' `{"connectorId": 1, "template": "night-16A", "transactionId": 42}` (transactionId for a TxProfile only);'
    " the server sends the template's profile with that transactionId, checked by the same rules; 404 if the"
    " template does not exist, 422 if the body also has csChargingProfiles.",
    (
        "ocpp1.6",
        "RemoteStartTransaction",
    ): "a chargingProfile must be a TxProfile and follows the SetChargingProfile rules.",
    ("ocpp1.6", "GetCompositeSchedule"): "duration > 0.",
    ("ocpp1.6", "ReserveNow"): "connectorId >= 0; connectorId and reservationId fit 32 bits. Without reservationId the"
    " server assigns one (a Postgres sequence: unique across the cluster, never an id on record); it is in the"
    " answer's `payload.reservationId`.",
    ("ocpp2.0.1", "SetChargingProfile"): "evseId >= 0 and the charging profile rules of OCPP 2.0.1 (K01): id and"
    " stackLevel >= 0; ChargingStationMaxProfile only on EVSE 0; TxProfile only on an EVSE > 0"
    " and with a transactionId, which no other purpose may have; ChargingStationExternalConstraints is not for a"
    " CSMS to set; recurrencyKind exactly on Recurring profiles; startSchedule on every schedule of an Absolute or"
    " Recurring profile and on none of a Relative one; schedule ids unique; periods start at 0 and increase,"
    " limits >= 0, numberPhases 1-3, phaseToUse 1-3 only with numberPhases 1; duration > 0; minChargingRate >= 0;"
    " validFrom before validTo.",
    ("ocpp2.0.1", "RequestStartTransaction"): "the remoteStartId (the server assigns one if it is left out, in"
    " the answer's `payload.remoteStartId`) links the transaction that follows (see"
    " `remote_starts` in GET /api/v1/stations/{station_id}/operations); evseId > 0; a chargingProfile is a"
    " TxProfile without transactionId and follows the SetChargingProfile rules.",
    ("ocpp2.0.1", "GetBaseReport"): "none beyond the schema (without requestId the server assigns one); the"
    " NotifyReport parts that answer are tied to the"
    " requestId: GET /api/v1/stations/{station_id}/reports.",
    ("ocpp2.0.1", "GetCompositeSchedule"): "evseId >= 0; duration > 0.",
    ("ocpp2.0.1", "ReserveNow"): "without id the server assigns one, as for 1.6 (`payload.id` of the answer); the"
    " reservation is listed by GET /api/v1/reservations with the 1.6 ones, used by the TransactionEvent that names"
    " it, and ended by the station's ReservationStatusUpdate (Expired, Removed).",
}


def _command_paths(actions: list[str]) -> dict[str, Schema]:
    paths: dict[str, Schema] = {}
    for action in actions:
        protocols = _protocols_of(action)
        required = all(
            json.loads(_schema_file(protocol, action, "Request").read_text(encoding="utf-8-sig")).get("required")
            for protocol in protocols
        )
        op = _op(
            f"command{action}",
            "commands",
            f"Send {action} to the station (through the replica that holds its connection)",
            "operator",
            {
                **_command_outcomes(_ref(f"CommandRecord.{action}"), with_async=True),
                "400": _r("BadRequest"),
                "404": _r("NotFound"),
                "413": _r("TooLarge"),
                "422": _r("Invalid"),
            },
            params=(_p("StationId"), *_query_params(CommandSendQuery)),
            body=_command_body(action),
            body_required=required,
        )
        versions = " and ".join(f"OCPP {protocol.removeprefix('ocpp')}" for protocol in protocols)
        op["x-ocpp-versions"] = protocols
        op["description"] += (
            f" An operation of {versions}. The body is the {action} request payload of the version the station"
            " negotiated on its latest connection, validated against the spec's schema (422 with the exact"
            " violation) before the station is looked up (404) or anything is sent; a station speaking a version"
            f" without {action} gets 422 naming its version (`details.allowed` lists that version's operations)."
            " A station that never connected: the body must suit one of the versions."
        )
        for protocol in protocols:
            rules = _EXTRA_RULES.get((protocol, action))
            if rules:
                op["description"] += f" Also checked for {protocol} (422): {rules}"
        paths[f"/api/v1/stations/{{station_id}}/commands/{action}"] = {"post": op}
    return paths


OPENAPI = Operation(
    "GET", "/openapi.json", "openapi", "health", "This document", None, {200: Answer(None, "OpenAPI 3.1 document.")}
)  # fmt: skip
DECLARED = (
    OPENAPI,
    *health_routes.OPERATIONS,
    *stations_routes.OPERATIONS,
    *transactions_routes.OPERATIONS,
    *id_tags_routes.OPERATIONS,
    *commands_routes.OPERATIONS,
    *sites_routes.OPERATIONS,
    *events_routes.OPERATIONS,
    *operations_routes.OPERATIONS,
    *devicemodel_routes.OPERATIONS,
    *charging_profiles_routes.OPERATIONS,
    *security_routes.OPERATIONS,
    *certificate_routes.OPERATIONS,
)
_SHARED_ERRORS = {400: "BadRequest", 404: "NotFound", 413: "TooLarge", 422: "Invalid"}


def _declared_paths() -> dict[str, Schema]:
    """The operations declared in the route table (csms.api.contract), as path items."""
    paths: dict[str, Schema] = {}
    for op in DECLARED:
        responses = {str(status): _answer(answer) for status, answer in op.answers.items()}
        responses.update({str(status): _r(_SHARED_ERRORS[status]) for status in op.errors})
        if op.conflict is not None:
            responses["409"] = _error(op.conflict)
        params = (*(_p(name) for name in op.path_params), *_query_params(op.query))
        body = None if op.body is None else _ref(op.body if isinstance(op.body, str) else op.body.__name__)
        paths.setdefault(op.path, {})[op.method.lower()] = _op(
            op.op_id, op.tag, op.summary, op.role, responses, params=params, body=body, body_required=op.body_required
        )
    return paths


def _answer(answer: Answer) -> Schema:
    if answer.model is not None:
        name = answer.model if isinstance(answer.model, str) else answer.model.__name__
        described = _json(_ref(name), answer.description)
        if answer.stream is not None:
            described["content"]["text/event-stream"] = {"schema": {**STR, "description": answer.stream}}
        return described
    if answer.media_type is None:
        return {"description": answer.description}
    schema = STR if answer.media_type.startswith("text/") else OBJ
    return {"description": answer.description, "content": {answer.media_type: {"schema": schema}}}


def _query_params(model: type[BaseModel] | None) -> tuple[Schema, ...]:
    """A query model's fields as parameters: a query parameter is absent or a value, never null."""
    if model is None:
        return ()
    params = []
    for name, schema in component_schemas_of(model)["properties"].items():
        description = schema.pop("description", "")
        branches = [branch for branch in schema.pop("anyOf", []) if branch != {"type": "null"}]
        if schema.get("default", 0) is None:
            del schema["default"]
        params.append(_param(name, "query", {**schema, **(branches[0] if branches else {})}, description))
    return tuple(params)


def _paths(actions: list[str]) -> dict[str, Schema]:
    return {**_declared_paths(), **_command_paths(actions)}


_DESCRIPTION = """Operate OCPP 1.6 and 2.0.1 charging stations through any replica of the CSMS cluster.

Authentication: `Authorization: Bearer <token>`. A token has a role: **read** may use every GET,
**operator** may also change things and send commands, **admin** may do everything. Each operation names the
role it needs. Every failure has the body `{"error": {"status", "code", "message", "details"?}}`.

Commands (`POST /api/v1/stations/{station_id}/commands/{Action}`) answer with the audited command record; its
HTTP status follows the outcome (200 completed, 202 pending, 409 offline, 502 call error, 503 unknown outcome,
504 timeout). Which actions exist and what their bodies look like depends on the OCPP version the station
negotiated (`x-ocpp-versions` on each command). The replica-to-replica endpoints under /internal/v1 are not part
of this API."""


@functools.cache
def _document_bytes() -> bytes:
    actions = command_actions()
    document = {
        "openapi": "3.1.0",
        "info": {"title": "CSMS REST API", "version": "1", "description": _DESCRIPTION},
        "tags": [
            {"name": name}
            for name in (
                "stations",
                "commands",
                "operations",
                "device-model",
                "sites",
                "transactions",
                "id-tags",
                "events",
                "cluster",
                "health",
            )
        ],
        "paths": _paths(actions),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (CSMS_API_TOKENS); its role (read, operator, admin) decides"
                    " what it may do.",
                }
            },
            "parameters": _PARAMS,
            "responses": _RESPONSES,
            "schemas": {**component_schemas(), **_server_filled(_ocpp_schemas(actions))},
        },
    }
    return orjson.dumps(document)


def openapi_document() -> dict[str, Any]:
    """The document as a fresh dict (built once; each caller gets its own copy to read or change)."""
    document: dict[str, Any] = orjson.loads(_document_bytes())
    return document


async def openapi_endpoint(request: Request) -> Response:
    """GET /openapi.json: public, like the API's shape itself."""
    return Response(_document_bytes(), media_type="application/json")


__all__ = ["command_actions", "openapi_document", "openapi_endpoint"]
