"""Schema validation: compiled once per version, schema rules mapped to the spec's CallError codes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from csms.ocpp import OcppError, Validator


@pytest.fixture(scope="module")
def v16() -> Validator:
    return Validator.for_version("1.6")


@pytest.fixture(scope="module")
def v201() -> Validator:
    return Validator.for_version("2.0.1")


def meter_values(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "connectorId": 1,
        "transactionId": 42,
        "meterValue": [
            {
                "timestamp": "2024-05-01T10:00:00.123Z",
                "sampledValue": [
                    {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"},
                ],
            }
        ],
    }
    payload.update(overrides)
    return payload


def sampled(**fields: Any) -> dict[str, Any]:
    return meter_values(meterValue=[{"timestamp": "2024-05-01T10:00:00Z", "sampledValue": [fields]}])


def test_for_version_is_cached_and_unknown_versions_fail(v16: Validator) -> None:
    assert Validator.for_version("1.6") is v16
    assert Validator.for_version("1.6", check_formats=False) is not v16
    with pytest.raises(ValueError):
        Validator.for_version("1.5")


def test_action_directions(v16: Validator, v201: Validator) -> None:
    assert v16.knows("MeterValues") and v16.knows("Reset") and not v16.knows("TransactionEvent")
    assert {"BootNotification", "MeterValues", "StopTransaction", "DataTransfer"} <= v16.station_actions
    assert {"Reset", "RemoteStartTransaction", "DataTransfer", "TriggerMessage"} <= v16.csms_actions
    assert "Reset" not in v16.station_actions and "Heartbeat" not in v16.csms_actions
    assert v16.station_actions | v16.csms_actions == v16.actions
    assert {"TransactionEvent", "NotifyReport"} <= v201.station_actions
    assert {"RequestStartTransaction", "GetVariables"} <= v201.csms_actions
    assert v201.station_actions & v201.csms_actions == {"DataTransfer"}


def test_valid_payloads_pass_and_are_not_modified(v16: Validator, v201: Validator) -> None:
    payload = meter_values()
    before = copy.deepcopy(payload)
    v16.validate_request("MeterValues", payload)
    assert payload == before
    v16.validate_response("MeterValues", {})
    v16.validate_response(
        "BootNotification", {"status": "Accepted", "currentTime": "2024-05-01T10:00:00Z", "interval": 300}
    )
    v201.validate_request(
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}},
    )


def test_multiple_of_decimal_limits_pass(v16: Validator) -> None:
    """1.6 charging limits are `multipleOf 0.1`: 21.4 must pass despite binary floating point."""
    profile = {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 21.4},
                    {"startPeriod": 60, "limit": 6.7},
                ],
            },
        },
    }
    v16.validate_request("SetChargingProfile", profile)
    profile["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] = 21.45  # type: ignore[index]
    with pytest.raises(OcppError) as info:
        v16.validate_request("SetChargingProfile", profile)
    assert info.value.code == "PropertyConstraintViolation"
    assert "chargingSchedulePeriod[0].limit" in info.value.description


# payload, version, code, field named in the description
VIOLATIONS = [
    (meter_values(connectorId="1"), "1.6", "TypeConstraintViolation", "connectorId"),
    (sampled(value=5), "1.6", "TypeConstraintViolation", "meterValue[0].sampledValue[0].value"),
    ({"connectorId": 1}, "1.6", "OccurenceConstraintViolation", "meterValue"),
    (sampled(unit="Wh"), "1.6", "OccurenceConstraintViolation", "meterValue[0].sampledValue[0].value"),
    (meter_values(meterValue=[]), "1.6", "OccurenceConstraintViolation", "meterValue"),
    (
        sampled(value="1", unit="Joule"),
        "1.6",
        "PropertyConstraintViolation",
        "meterValue[0].sampledValue[0].unit",
    ),
    (
        meter_values(meterValue=[{"timestamp": "yesterday", "sampledValue": [{"value": "1"}]}]),
        "1.6",
        "PropertyConstraintViolation",
        "meterValue[0].timestamp",
    ),
    (meter_values(extra=1), "1.6", "FormationViolation", "extra"),
    (sampled(value="1", bogus=True), "1.6", "FormationViolation", "meterValue[0].sampledValue[0].bogus"),
]


@pytest.mark.parametrize(("payload", "version", "code", "field"), VIOLATIONS)
def test_violations_map_to_spec_codes(payload: dict[str, Any], version: str, code: str, field: str) -> None:
    with pytest.raises(OcppError) as info:
        Validator.for_version(version).validate_request("MeterValues", payload)
    assert info.value.code == code
    assert info.value.description.startswith(field + " ")
    assert info.value.details["field"] == field


def test_many_missing_fields_are_all_named(v16: Validator) -> None:
    with pytest.raises(OcppError) as info:
        v16.validate_request("MeterValues", {})
    assert info.value.code == "OccurenceConstraintViolation"
    assert "connectorId" in info.value.description and "meterValue" in info.value.description


BOOT_201 = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"reason": "PowerUp"}, "OccurrenceConstraintViolation", "chargingStation"),
        ({**BOOT_201, "reason": "Bored"}, "PropertyConstraintViolation", "reason"),
        (
            {**BOOT_201, "chargingStation": {"model": "M" * 21, "vendorName": "V"}},
            "PropertyConstraintViolation",
            "chargingStation.model",
        ),
        (
            {**BOOT_201, "chargingStation": {"model": 5, "vendorName": "V"}},
            "TypeConstraintViolation",
            "chargingStation.model",
        ),
        ({**BOOT_201, "nope": 1}, "FormatViolation", "nope"),
    ],
)
def test_201_spelling_of_codes(v201: Validator, payload: dict[str, Any], code: str, field: str) -> None:
    with pytest.raises(OcppError) as info:
        v201.validate_request("BootNotification", payload)
    assert info.value.code == code
    assert info.value.description.startswith(field + " ")


@pytest.mark.parametrize(
    "timestamp",
    [
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00.123456+02:00",
        "2024-05-01T10:00:00",
        "2024-05-01T10:00:00+0200",
    ],
)
def test_date_time_accepts_iso_8601_with_or_without_offset(v16: Validator, timestamp: str) -> None:
    v16.validate_request("Heartbeat", {})
    v16.validate_response("Heartbeat", {"currentTime": timestamp})


def test_formats_can_be_switched_off() -> None:
    lenient = Validator.for_version("1.6", check_formats=False)
    lenient.validate_response("Heartbeat", {"currentTime": "whenever"})
    with pytest.raises(OcppError):
        Validator.for_version("1.6").validate_response("Heartbeat", {"currentTime": "whenever"})


def test_unknown_action_is_not_implemented(v16: Validator) -> None:
    with pytest.raises(OcppError) as info:
        v16.validate_request("TransactionEvent", {})
    assert info.value.code == "NotImplemented"


def test_response_validation(v16: Validator) -> None:
    with pytest.raises(OcppError) as info:
        v16.validate_response("Reset", {"status": "Maybe"})
    assert info.value.code == "PropertyConstraintViolation" and info.value.description.startswith("status ")
    with pytest.raises(OcppError) as info:
        v16.validate_response("Reset", [])
    assert info.value.code == "TypeConstraintViolation"
