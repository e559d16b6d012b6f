"""Property: any permutation and duplication of one transaction's TransactionEvents stores the same transaction.

Hypothesis draws an order (with repeats: retries) for a fixed set of events (Started, Updated readings, Ended,
some queued offline); each example is a new transactionId sent to a real replica on a real Postgres, and the
stored transaction (fields, energy, flags, events, readings) must equal the one stored in the natural order.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devcluster import station201 as v201
from devcluster.station import SimulatedStation
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration

# Fields that legitimately differ between two stored transactions: ids and when we received things.
_VOLATILE = {"id", "station_tx_id", "start_received_at", "stop_received_at", "received_at"}


def events(tx: str) -> list[dict[str, Any]]:
    at = [f"2030-01-01T10:{minute:02d}:00Z" for minute in range(6)]
    return [
        v201.transaction_event(
            "Started", tx, 0, timestamp=at[0], wh=1000, id_token="TAG-ORDER", evse_id=2, connector_id=1,
            charging_state="EVConnected",
        ),
        v201.transaction_event("Updated", tx, 1, timestamp=at[1], wh=1400, charging_state="Charging"),
        v201.transaction_event("Updated", tx, 2, timestamp=at[2], wh=1900, offline=True),
        v201.transaction_event("Updated", tx, 3, timestamp=at[3], wh=2600, offline=True, charging_state="SuspendedEV"),
        v201.transaction_event(
            "Ended", tx, 4, timestamp=at[4], wh=3100, id_token="TAG-ORDER", stopped_reason="EVDisconnected",
            charging_state="Idle",
        ),
    ]  # fmt: skip


def stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


async def stored(api: httpx.AsyncClient, tx: str) -> dict[str, Any]:
    items = (await api.get("/api/v1/transactions", params={"station_id": "CP-ORDER", "limit": 1000})).json()["items"]
    (row,) = [t for t in items if t["station_tx_id"] == tx]
    return stable((await api.get(f"/api/v1/transactions/{row['id']}")).json())


async def test_any_order_and_duplication_of_events_stores_the_same_transaction(csms: Running) -> None:
    await csms.put_station("CP-ORDER")
    await csms.put_id_tag("TAG-ORDER")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-ORDER", subprotocols=v201.SUBPROTOCOL_201) as cp,
        csms.api() as api,
    ):
        await cp.call("BootNotification", v201.boot())
        for event in events("TX-NATURAL"):
            await cp.call("TransactionEvent", event)
        expected = await stored(api, "TX-NATURAL")
        assert (expected["meter_start"], expected["meter_stop"], expected["energy_wh"]) == (1000, 3100, 2100)
        assert expected["offline"] and expected["charging_state"] == "Idle" and not expected["active"]
        count = 0

        async def example(order: list[int]) -> None:
            nonlocal count
            count += 1
            tx = f"TX-{count}"
            batch = events(tx)
            for index in order:
                await cp.call("TransactionEvent", batch[index])
            assert await stored(api, tx) == expected

        # Every event at least once, some repeated, in any order (hypothesis drives from a worker thread; each
        # example runs on this test's trio loop, where the replica lives).
        orders = st.permutations(range(5)).flatmap(
            lambda perm: st.lists(st.integers(0, 4), max_size=4).flatmap(lambda extra: st.permutations([*perm, *extra]))
        )

        @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(orders)
        def property_holds(order: list[int]) -> None:
            trio.from_thread.run(example, order)

        await trio.to_thread.run_sync(property_holds)
