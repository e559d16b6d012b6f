"""Nothing one station sends changes what the API shows for another (issue 9 item 1).

Every reference a station sends (transactionId, reservationId, connectorId) is resolved against the sender only:
a foreign transactionId in MeterValues is kept against the sender, flagged, and a foreign StopTransaction is
answered and recorded as the sender's unknown stop. The property test drives a real replica on a real Postgres
with hypothesis: for any sequence of messages from station A, built from B's own ids, B's API views stay equal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csms.storage import Database
from devcluster.station import CallErrorReply, SimulatedStation
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration

A, B = "CP-ISO-A", "CP-ISO-B"
TAG_A, TAG_B = "TAG-ISO-A", "TAG-ISO-B"
RESERVATION_B = 7


def iso(offset_seconds: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_seconds)).isoformat()


@dataclass
class Victim:
    transaction_ids: list[int]
    reservation_ids: list[int]


async def seed_victim(csms: Running, b: SimulatedStation) -> Victim:
    """B: booted, three connectors, an active and a finished transaction with readings, a reservation."""
    await b.boot()
    for connector in (0, 1, 2):
        await b.status(connector, "Available")
    active = (await b.start_transaction(1, TAG_B, meter_start=1000))["transactionId"]
    await b.meter_values(1, active, 1500)
    done = (await b.start_transaction(2, TAG_B, meter_start=50))["transactionId"]
    await b.meter_values(2, done, 80)
    await b.stop_transaction(done, 90)
    async with csms.api() as api:
        reserve = {"connectorId": 2, "expiryDate": iso(3600), "idTag": TAG_B, "reservationId": RESERVATION_B}
        response = await api.post(f"/api/v1/stations/{B}/commands/ReserveNow", json=reserve)
        assert response.status_code == 200, response.text
        # B's last message; its "seen" time is flushed with (and past) those of all before it: once it shows,
        # no later flush moves B's last_seen_at.
        last = datetime.now(UTC)
        await b.call("Heartbeat", {})
        with trio.fail_after(30):
            while not (seen := (await api.get(f"/api/v1/stations/{B}")).json()["last_seen_at"]) or (
                datetime.fromisoformat(seen) < last
            ):
                await trio.sleep(0.1)
    return Victim([active, done], [RESERVATION_B])


async def view_of_b(api: httpx.AsyncClient, victim: Victim) -> dict[str, Any]:
    """Everything the API shows about B."""
    paths = [
        f"/api/v1/stations/{B}",
        f"/api/v1/stations/{B}/operations",
        f"/api/v1/transactions?station_id={B}",
        f"/api/v1/reservations?station_id={B}",
        *(f"/api/v1/transactions/{tx}" for tx in victim.transaction_ids),
    ]
    view = {}
    for path in paths:
        response = await api.get(path)
        assert response.status_code == 200, (path, response.text)
        view[path] = response.json()
    return view


async def send_all(station: SimulatedStation, messages: list[tuple[str, Callable[[], dict[str, Any]]]]) -> None:
    """Send each message; CallErrors are fine (A may be refused), an InternalError never is."""
    for action, payload in messages:
        try:
            await station.call(action, payload())
        except CallErrorReply as exc:
            assert exc.code != "InternalError", (action, exc)


async def test_meter_values_naming_another_stations_transaction_stay_with_the_sender(csms: Running) -> None:
    for station in (A, B):
        await csms.put_station(station)
    async with (
        SimulatedStation.connect(csms.ocpp_url, B) as b,
        SimulatedStation.connect(csms.ocpp_url, A) as a,
        csms.api() as api,
    ):
        victim = await seed_victim(csms, b)
        before = await view_of_b(api, victim)
        victim_tx = victim.transaction_ids[0]
        assert await a.meter_values(1, victim_tx, 999_999) == {}
        assert await view_of_b(api, victim) == before

    async with Database.open(csms.database_url, pool_size=1) as db:
        rows = await db.fetch(
            "SELECT station_id, transaction_id, reported_transaction_id, flag FROM meter_readings WHERE value = $1",
            "999999",
        )
    assert [dict(r) for r in rows] == [
        {"station_id": A, "transaction_id": 0, "reported_transaction_id": victim_tx, "flag": "unknown_transaction"}
    ]


async def test_stop_naming_another_stations_transaction_is_answered_and_recorded_for_the_sender(
    csms: Running,
) -> None:
    for station in (A, B):
        await csms.put_station(station)
    async with (
        SimulatedStation.connect(csms.ocpp_url, B) as b,
        SimulatedStation.connect(csms.ocpp_url, A) as a,
        csms.api() as api,
    ):
        victim = await seed_victim(csms, b)
        before = await view_of_b(api, victim)
        active = victim.transaction_ids[0]
        assert await a.call("StopTransaction", {"transactionId": active, "meterStop": 5, "timestamp": iso()}) == {}
        assert await view_of_b(api, victim) == before
        assert (await api.get(f"/api/v1/transactions/{active}")).json()["active"] is True

    async with Database.open(csms.database_url, pool_size=1) as db:
        rows = await db.fetch("SELECT station_id, transaction_id, stop_reason FROM unknown_stops")
    assert [dict(r) for r in rows] == [{"station_id": A, "transaction_id": active, "stop_reason": "Local"}]


def messages_from_a(victim: Victim) -> st.SearchStrategy[list[tuple[str, Callable[[], dict[str, Any]]]]]:
    """Any message A may send, with B's transaction and reservation ids and B's connector ids mixed in."""
    transaction_ids = st.sampled_from(victim.transaction_ids) | st.integers(1, 40)
    reservation_ids = st.sampled_from(victim.reservation_ids) | st.integers(1, 20)
    connectors = st.integers(-1, 4)
    meter = st.integers(-5, 2_000_000)
    offsets = st.sampled_from([-3600.0, 0.0, 600.0, 3 * 86400.0])  # late, now, after a stop, far future
    id_tags = st.sampled_from([TAG_A, TAG_B])

    def meter_values(connector: int, tx: int | None, wh: int, offset: float) -> tuple[str, Callable[[], Any]]:
        def payload() -> dict[str, Any]:
            sample = {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
            body: dict[str, Any] = {
                "connectorId": connector,
                "meterValue": [{"timestamp": iso(offset), "sampledValue": [sample]}],
            }
            if tx is not None:
                body["transactionId"] = tx
            return body

        return "MeterValues", payload

    def start(connector: int, tag: str, meter_start: int, reservation: int | None) -> tuple[str, Callable[[], Any]]:
        def payload() -> dict[str, Any]:
            body = {"connectorId": connector, "idTag": tag, "meterStart": meter_start, "timestamp": iso()}
            return body if reservation is None else {**body, "reservationId": reservation}

        return "StartTransaction", payload

    def stop(tx: int, meter_stop: int, tag: str | None, offset: float) -> tuple[str, Callable[[], Any]]:
        def payload() -> dict[str, Any]:
            body: dict[str, Any] = {"transactionId": tx, "meterStop": meter_stop, "timestamp": iso(offset)}
            return body if tag is None else {**body, "idTag": tag}

        return "StopTransaction", payload

    def status(connector: int, state: str) -> tuple[str, Callable[[], Any]]:
        return "StatusNotification", lambda: {
            "connectorId": connector,
            "status": state,
            "errorCode": "NoError",
            "timestamp": iso(),
        }

    def fixed(action: str, body: dict[str, Any]) -> tuple[str, Callable[[], Any]]:
        return action, lambda: body

    message = st.one_of(
        st.builds(meter_values, connectors, st.none() | transaction_ids, meter, offsets),
        st.builds(start, connectors, id_tags, meter, st.none() | reservation_ids),
        st.builds(stop, transaction_ids, meter, st.none() | id_tags, offsets),
        st.builds(status, st.integers(0, 3), st.sampled_from(["Available", "Charging", "Faulted"])),
        st.builds(fixed, st.just("Authorize"), id_tags.map(lambda tag: {"idTag": tag})),
        st.sampled_from(
            [
                fixed("Heartbeat", {}),
                fixed("BootNotification", {"chargePointVendor": "Evil", "chargePointModel": "X"}),
                fixed("DataTransfer", {"vendorId": "com.example", "data": B}),
                fixed("DiagnosticsStatusNotification", {"status": "Uploaded"}),
                fixed("FirmwareStatusNotification", {"status": "Installed"}),
            ]
        ),
    )
    return st.lists(message, min_size=1, max_size=6)


async def test_nothing_a_station_sends_changes_what_the_api_shows_for_another(csms: Running) -> None:
    for station in (A, B):
        await csms.put_station(station)
    await csms.put_id_tag(TAG_A)
    await csms.put_id_tag(TAG_B)
    async with (
        SimulatedStation.connect(csms.ocpp_url, B) as b,
        SimulatedStation.connect(csms.ocpp_url, A) as a,
        csms.api() as api,
    ):
        victim = await seed_victim(csms, b)
        before = await view_of_b(api, victim)

        async def example(messages: list[tuple[str, Callable[[], dict[str, Any]]]]) -> None:
            await send_all(a, messages)
            assert await view_of_b(api, victim) == before

        # Hypothesis drives from a worker thread; each example runs on this test's trio loop, where the replica
        # lives (pytest-trio would otherwise start a fresh loop, and replica, per example).
        @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(messages_from_a(victim))
        def property_holds(messages: list[tuple[str, Callable[[], dict[str, Any]]]]) -> None:
            trio.from_thread.run(example, messages)

        await trio.to_thread.run_sync(property_holds)
