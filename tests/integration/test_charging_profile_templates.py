"""Named charging-profile templates: stored, listed and deleted through the API, and sent by SetChargingProfile
to a station as the profile they stand for."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.station import SimulatedStation
from tests.integration.conftest import READ_TOKEN, Running

pytestmark = pytest.mark.integration

NIGHT = {
    "stackLevel": 1,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Recurring",
    "recurrencyKind": "Daily",
    "chargingSchedule": {
        "chargingRateUnit": "A",
        "startSchedule": "2026-01-01T22:00:00Z",
        "duration": 28800,
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
    },
}
BOOST = {
    "chargingProfileId": 77,
    "stackLevel": 2,
    "chargingProfilePurpose": "TxProfile",
    "chargingProfileKind": "Relative",
    "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}]},
}
SITE_MAX = {**BOOST, "chargingProfileId": 78, "stackLevel": 0, "chargingProfilePurpose": "ChargePointMaxProfile"}


def _with_periods(*starts: int) -> dict[str, Any]:
    periods = [{"startPeriod": start, "limit": 16.0} for start in starts]
    return {**NIGHT, "chargingSchedule": {**NIGHT["chargingSchedule"], "chargingSchedulePeriod": periods}}


async def test_templates_are_created_replaced_listed_and_deleted(csms: Running) -> None:
    base = "/api/v1/charging-profiles"
    async with csms.api() as api, csms.api(READ_TOKEN) as reader:
        created = await api.put(f"{base}/night-16A", json=NIGHT)
        assert created.status_code == 201, created.text
        template = created.json()
        default_id = template["profile"]["chargingProfileId"]
        assert default_id >= 1_000_000_000 and template["profile"] == {"chargingProfileId": default_id, **NIGHT}
        assert (template["name"], template["updated_by"]) == ("night-16A", "token:ci-admin")

        replaced = await api.put(f"{base}/night-16A", json=_with_periods(0, 3600))
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["profile"]["chargingProfileId"] == default_id  # stable: re-sending replaces itself
        assert (await api.put(f"{base}/boost", json=BOOST)).json()["profile"]["chargingProfileId"] == 77

        fetched = await reader.get(f"{base}/night-16A")
        assert fetched.status_code == 200 and fetched.json() == replaced.json()
        pages, after = [], ""
        while after is not None:
            body = (await reader.get(base, params={"limit": 1, "after": after})).json()
            pages.append([item["name"] for item in body["items"]])
            after = body["next"]
        assert pages == [["boost"], ["night-16A"], []]

        assert (await reader.put(f"{base}/x", json=NIGHT)).status_code == 403
        assert (await reader.delete(f"{base}/boost")).status_code == 403
        assert (await api.get(f"{base}/no-such")).status_code == 404
        assert (await api.get(f"{base}/a%20b")).status_code == 400
        assert (await api.put(f"{base}/{'n' * 65}", json=NIGHT)).status_code == 400

        assert (await api.delete(f"{base}/boost")).status_code == 204
        assert (await api.get(f"{base}/boost")).status_code == 404
        assert (await api.delete(f"{base}/boost")).status_code == 404


@pytest.mark.parametrize(
    ("profile", "named"),
    [
        (_with_periods(0, 0), "invalid: chargingSchedule.chargingSchedulePeriod[1].startPeriod must increase"),
        ({**NIGHT, "stackLevel": "high"}, "invalid: stackLevel must be of type integer"),
        ({**NIGHT, "stackLevel": 2**31}, "stackLevel"),
        ({**NIGHT, "chargingProfileKind": "Absolute"}, "recurrencyKind"),
        ({**NIGHT, "transactionId": 5}, "transactionId"),
        (
            {key: value for key, value in NIGHT.items() if key != "chargingSchedule"},
            "invalid: chargingSchedule is required",
        ),
        ({**NIGHT, "colour": "blue"}, "colour"),
    ],
)
async def test_an_invalid_template_is_refused_naming_the_field(
    csms: Running, profile: dict[str, Any], named: str
) -> None:
    async with csms.api() as api:
        response = await api.put("/api/v1/charging-profiles/bad", json=profile)
        assert response.status_code == 422, response.text
        assert named in response.json()["error"]["message"]
        assert (await api.get("/api/v1/charging-profiles/bad")).status_code == 404


async def test_set_charging_profile_sends_the_expanded_template(csms: Running) -> None:
    await csms.put_station("CP-T")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-T") as cp, csms.api() as api:
        night = (await api.put("/api/v1/charging-profiles/night-16A", json=NIGHT)).json()["profile"]
        for name, profile in (("boost", BOOST), ("site-max", SITE_MAX)):
            assert (await api.put(f"/api/v1/charging-profiles/{name}", json=profile)).status_code == 201
        transaction_id = (await cp.start_transaction(1, "TAG", 0))["transactionId"]
        url = "/api/v1/stations/CP-T/commands/SetChargingProfile"

        sent = await api.post(url, json={"connectorId": 1, "template": "night-16A"})
        assert sent.status_code == 200, sent.text
        assert sent.json()["payload"] == {"connectorId": 1, "csChargingProfiles": night}  # the audit shows it
        sent = await api.post(url, json={"connectorId": 1, "template": "boost", "transactionId": transaction_id})
        assert sent.status_code == 200, sent.text

        refused = {
            "unknown template": (404, {"connectorId": 1, "template": "no-such"}),
            "template and inline": (422, {"connectorId": 1, "template": "boost", "csChargingProfiles": BOOST}),
            "unknown field": (422, {"connectorId": 1, "template": "boost", "stackLevel": 3}),
            "station-wide on a connector": (422, {"connectorId": 1, "template": "site-max"}),
            "transaction on a default": (422, {"connectorId": 1, "template": "night-16A", "transactionId": 1}),
            "no connector": (422, {"template": "night-16A"}),
            "not a name": (422, {"connectorId": 1, "template": 5}),
        }
        for why, (status, body) in refused.items():
            response = await api.post(url, json=body)
            assert response.status_code == status, f"{why}: {response.text}"

        installed = (await api.get("/api/v1/stations/CP-T/operations")).json()["charging_profiles"]
    received = [payload for action, payload in cp.received_calls if action == "SetChargingProfile"]
    assert received == [
        {"connectorId": 1, "csChargingProfiles": night},
        {"connectorId": 1, "csChargingProfiles": {**BOOST, "transactionId": transaction_id}},
    ]
    assert {(p["charging_profile_id"], p["transaction_id"]) for p in installed} == {
        (night["chargingProfileId"], None),
        (77, transaction_id),
    }
