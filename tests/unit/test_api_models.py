"""The API's request models: what they accept and refuse, and the 422 messages an operator reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest

from csms.api.errors import ApiError
from csms.api.models.bodies import IdTagPut, IdTagStatus, StationPut, TokenType, TransactionClose
from csms.api.models.schemas import component_schemas
from csms.api.models.sites import SiteLimitPut, SitePut
from csms.api.validation import parse
from csms.authorization import STATUSES, TOKEN_TYPES


def test_enums_are_the_authorization_modules() -> None:
    assert get_args(TokenType) == TOKEN_TYPES
    assert get_args(IdTagStatus) == STATUSES


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (StationPut, {"security_profile": True}, "security_profile"),  # a bool is not an int here
        (StationPut, {"security_profile": 4}, "security_profile"),
        (StationPut, {"password": "short"}, "password"),
        (StationPut, {"boot_status": "Maybe"}, "boot_status"),
        (StationPut, {"description": "a\x00b"}, "description"),
        (IdTagPut, {"expiry_date": 1700000000}, "expiry_date"),  # a number is not an instant
        (IdTagPut, {"expiry_date": "0001-01-01T00:00:00+01:00"}, "expiry_date"),  # off the calendar in UTC
        (IdTagPut, {"parent_id_tag": ""}, "parent_id_tag"),
        (IdTagPut, {"type": "Badge"}, "type"),
        (TransactionClose, {"reason": "   "}, "reason"),
        (TransactionClose, {"reason": "r", "meter_stop": 1.5}, "meter_stop"),
        (TransactionClose, {"reason": "r", "meter_stop": -1}, "meter_stop"),
        (TransactionClose, {}, "reason"),
    ],
)
def test_a_bad_field_is_a_422_naming_it(model: type, body: dict[str, object], field: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse(model, body)
    assert (caught.value.status, caught.value.code) == (422, "invalid")
    assert caught.value.message.startswith(f"{field}: "), caught.value.message


def test_unknown_fields_are_listed_with_the_allowed_ones() -> None:
    with pytest.raises(ApiError) as caught:
        parse(TransactionClose, {"reason": "r", "meterStop": 5, "why": "x"})
    assert caught.value.message == "unknown field(s): meterStop, why; allowed: meter_stop, reason"


def test_given_fields_are_known_apart_from_defaults() -> None:
    """PUT /stations changes only the fields given: null (remove the password) differs from absent."""
    assert parse(StationPut, {"password": None}).model_fields_set == {"password"}
    assert parse(StationPut, {}).model_fields_set == set()
    naive = parse(IdTagPut, {"expiry_date": "2030-01-01T00:00:00"}).expiry_date
    assert naive is not None and naive.utcoffset() is not None  # no offset: UTC


def test_components_are_closed_and_untitled() -> None:
    schemas = component_schemas()
    assert schemas["Transaction"]["additionalProperties"] is False
    assert all("title" not in schema for schema in schemas.values())
    assert "async" in schemas["CommandRecord"]["required"]  # the alias, as the record is stored


def test_site_body_and_override_are_checked_readably() -> None:
    spec = parse(SitePut, {"limit": 32, "unit": "A", "stations": ["CP1", {"id": "CP2", "max_current": 16}]})
    assert [s.max_current for s in spec.spec("depot").stations] == [32, 16]
    for body, message in [
        ({"limit": 32, "stations": []}, "stations: List should have at least 1 item"),
        ({"limit": -1, "stations": ["a"]}, "limit: Input should be greater than 0"),
        ({"limit": True, "stations": ["a"]}, "limit: Input should be a valid number"),
        ({"limit": 32, "unit": "kW", "stations": ["a"]}, "unit: Input should be 'A' or 'W'"),
        ({"limit": 32, "stations": ["a", "a"]}, "stations: a station is listed twice"),
        ({"limit": 32, "stations": [{"id": "a", "min_current": 20, "max_current": 10}]}, "must not exceed"),
        ({"limit": 32, "stations": ["a"], "schedule": [{"from": "25:00", "limit": 3}]}, "schedule.0.from"),
    ]:
        with pytest.raises(ApiError) as caught:
            parse(SitePut, body)
        assert message in caught.value.message, (body, caught.value.message)
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert parse(SiteLimitPut, {"limit": 10, "duration": 60}).until(now) == now + timedelta(seconds=60)
    with pytest.raises(ApiError, match="exactly one"):
        parse(SiteLimitPut, {"limit": 10})
    with pytest.raises(ValueError, match="within 7 days"):
        parse(SiteLimitPut, {"limit": 10, "expires_at": "2026-02-01T00:00:00Z"}).until(now)
