"""The models' JSON Schemas as OpenAPI components (#/components/schemas/<class name>)."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from csms.api.models import bodies, commands, devicemodel, events, operations, resources, security, sites

Schema = dict[str, Any]

MODELS: tuple[type[BaseModel], ...] = (
    resources.Error,
    resources.Health,
    resources.Readiness,
    resources.Cluster,
    resources.StationPage,
    resources.StationWithConnectors,
    resources.StationDetail,
    resources.StationEventPage,
    resources.TransactionPage,
    resources.TransactionDetail,
    resources.IdTagPage,
    commands.CommandPage,
    bodies.StationPut,
    bodies.IdTagPut,
    bodies.TransactionClose,
    bodies.LocalListSync,
    sites.Site,
    sites.SitePut,
    sites.SiteLimitPut,
    events.EventPage,
    events.EventSchemas,
    events.ExportSinks,
    events.DeadLetterPage,
    events.ReplayRequest,
    events.ReplayResult,
    operations.ReservationPage,
    operations.StationOperations,
    operations.ChargingProfileTemplatePage,
    devicemodel.DeviceVariablePage,
    devicemodel.DeviceModelReports,
    security.SecurityEventPage,
    security.PasswordRotation,
    security.ProfileChangeBody,
    security.ProfileChange,
    security.CertificateList,
    security.CertificateRenewal,
    security.CertificateRequestList,
    security.CertificateImport,
    security.CertificateDelivery,
)


@functools.cache
def component_schemas() -> dict[str, Schema]:
    """Every model above and every model they use, by class name; without pydantic's generated titles."""
    _, top = models_json_schema([(m, "validation") for m in MODELS], ref_template="#/components/schemas/{model}")
    return {name: _untitled(schema) for name, schema in sorted(top["$defs"].items())}


def _untitled(schema: Any) -> Any:
    """Drop pydantic's titles (noise in a 3,000-line document); docstring descriptions on one line; an
    `x-component` (a field typed by a component pydantic does not know: the OCPP schemas) becomes its $ref."""
    if isinstance(schema, dict) and "x-component" in schema:
        schema = {"$ref": f"#/components/schemas/{schema['x-component']}", **schema}
        del schema["x-component"]
    if isinstance(schema, dict):
        return {
            k: " ".join(v.split()) if k == "description" and isinstance(v, str) else _untitled(v)
            for k, v in schema.items()
            if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    return schema


def component_schemas_of(model: type[BaseModel]) -> Schema:
    """One model's own schema (a fresh copy), e.g. a query model's fields."""
    return _untitled(model.model_json_schema(ref_template="#/components/schemas/{model}"))
