"""String enums checked as set lookups accept and refuse exactly what fastjsonschema's own code does."""

from __future__ import annotations

import functools
from typing import Any

import fastjsonschema
import pytest

from csms.ocpp.schema_compile import compile_schema, string_enums_as_sets
from csms.ocpp.schemas import _DATE_TIME, load_schemas

FORMATS = {"date-time": _DATE_TIME.pattern}


def test_an_all_string_chain_on_one_variable_becomes_one_set_lookup() -> None:
    chain = "    if not (isinstance(v, str) and v == 'A' or isinstance(v, str) and v == \"it's\\\" or x\"):"
    assert string_enums_as_sets(chain) == "    if not (isinstance(v, str) and v in {'A', \"it's\\\" or x\"}):"


@pytest.mark.parametrize(
    "chain",
    [
        "if not (isinstance(v, str) and v == 'A' or isinstance(v, int) and v == 1):",  # not all strings
        "if not (isinstance(v, str) and v == 'A' or isinstance(w, str) and w == 'B'):",  # two variables
        "if not (isinstance(v, str) and v == 'A' or v is None):",  # another kind of test
        "if not (isinstance(v, str) and v != 'A' or isinstance(v, str) and v == 'B'):",
        "if not (isinstance(v, str) and v == 'A') and ok:",  # more than the chain
    ],
)
def test_any_other_chain_is_left_as_generated(chain: str) -> None:
    assert string_enums_as_sets(chain) == chain


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_every_schema_compiles_to_its_own_root_validator(version: str) -> None:
    for schemas in load_schemas(version):
        for schema in schemas.values():
            ours = compile_schema(schema, formats=FORMATS, use_formats=True)
            theirs = fastjsonschema.compile(schema, formats=FORMATS, use_default=False)
            assert ours.__name__ == theirs.__name__


def _outcome(validate: Any, payload: Any) -> tuple[str, str] | None:
    try:
        validate(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        return exc.message, exc.rule or ""
    return None


@functools.cache
def _meter_values_validators() -> tuple[Any, Any]:
    schema = load_schemas("1.6")[0]["MeterValues"]
    ours = compile_schema(schema, formats=FORMATS, use_formats=True)
    return ours, fastjsonschema.compile(schema, formats=FORMATS, use_default=False)


@pytest.mark.parametrize("field", ["context", "format", "measurand", "phase", "location", "unit"])
@pytest.mark.parametrize(
    "value", ["Wh", "L1", "Raw", "Outlet", "Voltage", "Trigger", "wh", "", 1, 1.0, True, None, ["Wh"]]
)
def test_meter_values_enums_decide_as_fastjsonschema_does(field: str, value: Any) -> None:
    payload = {"connectorId": 1, "meterValue": [{"timestamp": "2026-12-02T09:00:00Z", "sampledValue": []}]}
    payload["meterValue"][0]["sampledValue"].append({"value": "1", field: value})
    ours, theirs = _meter_values_validators()
    assert _outcome(ours, payload) == _outcome(theirs, payload)
