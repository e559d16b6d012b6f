"""Transaction API gaps an outside conformance driver hit (issue 9 item 11): the id_tag filter, and an operator's
close of a stale open transaction (who, why and when recorded; a later real StopTransaction still wins)."""

from __future__ import annotations

import pytest

from devcluster.station import SimulatedStation
from tests.integration.conftest import READ_TOKEN, Running

pytestmark = pytest.mark.integration


async def test_transactions_filter_by_id_tag(csms: Running) -> None:
    await csms.put_station("CP-TAGS")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-TAGS") as cp, csms.api() as api:
        first = (await cp.start_transaction(1, "TAG-ONE", meter_start=0))["transactionId"]
        second = (await cp.start_transaction(2, "TAG-TWO", meter_start=0))["transactionId"]
        third = (await cp.start_transaction(3, "TAG-ONE", meter_start=0))["transactionId"]
        listed = (await api.get("/api/v1/transactions", params={"id_tag": "TAG-ONE"})).json()
        assert [t["id"] for t in listed["items"]] == [third, first]
        listed = (await api.get("/api/v1/transactions", params={"id_tag": "TAG-TWO", "active": "true"})).json()
        assert [t["id"] for t in listed["items"]] == [second]
        assert (await api.get("/api/v1/transactions", params={"id_tag": "NOBODY"})).json()["items"] == []
        response = await api.get("/api/v1/transactions", params={"id_tag": "X" * 37})
        assert response.status_code == 400 and "id_tag" in response.json()["error"]["message"]


async def test_operator_closes_a_stale_transaction_with_a_recorded_reason(csms: Running) -> None:
    await csms.put_station("CP-STALE")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-STALE") as cp, csms.api() as api:
        estimated = (await cp.start_transaction(1, "TAG-S", meter_start=1000))["transactionId"]
        await cp.meter_values(1, estimated, 1700)
        given = (await cp.start_transaction(2, "TAG-S", meter_start=200))["transactionId"]
        close = f"/api/v1/transactions/{estimated}/close"

        async with csms.api(READ_TOKEN) as reader:
            assert (await reader.post(close, json={"reason": "station replaced"})).status_code == 403
        for body, field in (
            ({}, "reason"),
            ({"reason": ""}, "reason"),
            ({"reason": "x", "meter_stop": True}, "meter_stop"),
            ({"reason": "x", "extra": 1}, "extra"),
        ):
            response = await api.post(close, json=body)
            assert response.status_code == 422 and field in response.json()["error"]["message"], body
        response = await api.post(f"/api/v1/transactions/{given}/close", json={"reason": "x", "meter_stop": 100})
        assert response.status_code == 422 and "meter_start (200 Wh)" in response.json()["error"]["message"]
        assert (await api.post("/api/v1/transactions/999999/close", json={"reason": "x"})).status_code == 404

        response = await api.post(close, json={"reason": "station replaced"})
        assert response.status_code == 200, response.text
        closed = response.json()
        assert (closed["active"], closed["stop_reason"], closed["meter_stop"], closed["energy_wh"]) == (
            False,
            "ClosedByOperator",
            1700,  # the last plausible reading
            700,
        )
        assert (closed["operator_closed_by"], closed["operator_close_reason"]) == ("token:ci-admin", "station replaced")
        assert closed["operator_closed_at"] is not None
        response = await api.post(close, json={"reason": "again"})
        assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"

        response = await api.post(f"/api/v1/transactions/{given}/close", json={"reason": "lost", "meter_stop": 450})
        assert (response.json()["meter_stop"], response.json()["energy_wh"]) == (450, 250)

        # The station's own stop turns up after all: its meterStop is the truth; the operator's record stays.
        assert await cp.stop_transaction(estimated, 1900, reason="EVDisconnected") == {}
        real = (await api.get(f"/api/v1/transactions/{estimated}")).json()
        assert (real["stop_reason"], real["energy_wh"], real["operator_close_reason"]) == (
            "EVDisconnected",
            900,
            "station replaced",
        )
