"""A TransactionEvent repeating a kept seqNo: the same content is a retry (a no-op), different content is kept
apart for investigation and flags the transaction, which stays derived from the first event kept."""

from __future__ import annotations

import pytest

from devcluster import station201 as v201
from devcluster.station import SimulatedStation
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration


async def test_a_repeated_seq_no_with_different_content_is_kept_apart_and_flagged(csms: Running) -> None:
    await csms.put_station("CP-CONFLICT")
    await csms.put_id_tag("TAG-CONFLICT")
    at = [f"2025-01-01T10:{minute:02d}:00Z" for minute in range(3)]
    started = v201.transaction_event("Started", "TX-C", 0, timestamp=at[0], wh=1000, id_token="TAG-CONFLICT", evse_id=1)
    updated = v201.transaction_event("Updated", "TX-C", 1, timestamp=at[1], wh=1500)
    other = v201.transaction_event("Updated", "TX-C", 1, timestamp=at[2], wh=9999, charging_state="SuspendedEV")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-CONFLICT", subprotocols=v201.SUBPROTOCOL_201) as cp,
        csms.api() as api,
    ):
        await cp.call("BootNotification", v201.boot())
        for event in (started, updated, updated):  # the second `updated`: a plain retry
            assert await cp.call("TransactionEvent", event) is not None
        (row,) = (await api.get("/api/v1/transactions", params={"station_id": "CP-CONFLICT"})).json()["items"]
        detail = (await api.get(f"/api/v1/transactions/{row['id']}")).json()
        assert detail["flags"] == [] and detail["conflicting_events"] == []

        for _ in range(2):  # the conflicting variant, retried: answered normally, kept once
            assert await cp.call("TransactionEvent", other) == {}
        detail = (await api.get(f"/api/v1/transactions/{row['id']}")).json()
        assert detail["flags"] == ["conflicting_events"]
        (conflict,) = detail["conflicting_events"]
        assert conflict["seq_no"] == 1 and conflict["content"]["charging_state"] == "SuspendedEV"
        assert conflict["content"]["samples"][0]["value"] == "9999"
        # The transaction is still derived from the first event kept under seqNo 1.
        assert detail["event_count"] == 2 and detail["charging_state"] is None
        assert [e["seq_no"] for e in detail["events"]] == [0, 1]
