"""Reservations through the API: one by id, paging, and reservationIds the server assigns to ReserveNow."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from csms import operations
from csms.operations import OperationsViews
from csms.storage import Database
from devcluster.station import SimulatedStation
from tests.integration.conftest import READ_TOKEN, Running

pytestmark = pytest.mark.integration

INT32_MAX = 2**31 - 1


def _reserve(connector_id: int, **extra: Any) -> dict[str, Any]:
    expiry = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    return {"connectorId": connector_id, "expiryDate": expiry, "idTag": "TAG", **extra}


async def _reserve_now(api: httpx.AsyncClient, station: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(f"/api/v1/stations/{station}/commands/ReserveNow", json=payload)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_reserve_now_without_id_gets_a_fresh_server_id_that_is_sent_and_recorded(csms: Running) -> None:
    await csms.put_station("CP-A")
    await csms.put_station("CP-B")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-A") as cp_a,
        SimulatedStation.connect(csms.ocpp_url, "CP-B") as cp_b,
        csms.api() as api,
    ):
        for chosen in (1, 2):  # ids operators picked themselves are never handed out again
            await _reserve_now(api, "CP-A", _reserve(1, reservationId=chosen))
        records: list[dict[str, Any]] = []

        async def reserve(station: str) -> None:
            records.append(await _reserve_now(api, station, _reserve(1)))

        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(reserve, ("CP-A", "CP-B")[i % 2])
        assigned = [record["payload"]["reservationId"] for record in records]
        assert len(set(assigned)) == 10 and all(2 < rid <= INT32_MAX for rid in assigned), assigned
        sent = [p["reservationId"] for cp in (cp_a, cp_b) for action, p in cp.received_calls if action == "ReserveNow"]
        assert sorted(sent) == sorted([1, 2, *assigned])
        for record in records:
            response = await api.get(f"/api/v1/reservations/{record['payload']['reservationId']}")
            assert response.status_code == 200, response.text
            reservation = response.json()
            assert (reservation["station_id"], reservation["status"], reservation["command_id"]) == (
                record["station_id"],
                "Active",
                record["id"],
            )
        too_big = await api.post("/api/v1/stations/CP-A/commands/ReserveNow", json=_reserve(1, reservationId=2**31))
        assert too_big.status_code == 422 and "reservationId" in too_big.json()["error"]["message"]


async def test_one_reservation_by_id(csms: Running) -> None:
    await csms.put_station("CP-A")
    await csms.put_station("CP-B")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-A"),
        SimulatedStation.connect(csms.ocpp_url, "CP-B"),
        csms.api() as api,
        csms.api(READ_TOKEN) as reader,
    ):
        await _reserve_now(api, "CP-A", _reserve(1, reservationId=7))
        await _reserve_now(api, "CP-A", _reserve(2, reservationId=8))
        found = await reader.get("/api/v1/reservations/8")
        assert found.status_code == 200, found.text
        assert (found.json()["station_id"], found.json()["connector_id"]) == ("CP-A", 2)
        assert (await reader.get("/api/v1/reservations/9")).status_code == 404
        for bad in ("x", "-1", "2147483648", "%C2%B2"):
            response = await reader.get(f"/api/v1/reservations/{bad}")
            assert response.status_code == 400, (bad, response.text)

        await _reserve_now(api, "CP-B", _reserve(1, reservationId=7))  # another station, same id
        ambiguous = await reader.get("/api/v1/reservations/7")
        assert ambiguous.status_code == 409, ambiguous.text
        assert ambiguous.json()["error"]["details"]["stations"] == ["CP-A", "CP-B"]
        picked = await reader.get("/api/v1/reservations/7", params={"station_id": "CP-B"})
        assert picked.status_code == 200 and picked.json()["station_id"] == "CP-B"
        assert (await reader.get("/api/v1/reservations/8", params={"station_id": "CP-B"})).status_code == 404


async def test_reservations_page_newest_first_with_a_before_cursor(csms: Running) -> None:
    await csms.put_station("CP-P")
    await csms.put_station("CP-Q")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-P"),
        SimulatedStation.connect(csms.ocpp_url, "CP-Q"),
        csms.api() as api,
    ):
        made = [(await _reserve_now(api, "CP-P", _reserve(1)))["payload"]["reservationId"] for _ in range(5)]
        await _reserve_now(api, "CP-Q", _reserve(1))
        pages: list[list[int]] = []
        params: dict[str, Any] = {"station_id": "CP-P", "limit": 2}
        while True:
            body = (await api.get("/api/v1/reservations", params=params)).json()
            pages.append([item["reservation_id"] for item in body["items"]])
            if body["next"] is None:
                break
            params["before"] = body["next"]
        assert pages == [made[4:2:-1], made[2:0:-1], made[:1]]
        everything = (await api.get("/api/v1/reservations")).json()
        assert len(everything["items"]) == 6 and everything["next"] is None
        assert (await api.get("/api/v1/reservations", params={"before": "x"})).status_code == 400


async def test_reservations_on_record_survive_the_upgrade_keep_their_order_and_their_ids(
    db: Database, tmp_path: Path
) -> None:
    first = tmp_path / "operations"
    first.mkdir()
    shutil.copy(operations.MIGRATIONS / "0001_operations.sql", first)
    await db.migrate([("operations", first)])
    await db.execute(
        "INSERT INTO reservations (station_id, reservation_id, connector_id, id_tag, expiry_date, status, created_at)"
        " VALUES ('S', 1, 1, 'T', now(), 'Active', now() - interval '1 hour'), ('S', 2, 1, 'T', now(), 'Used', now())"
    )
    await db.migrate([("operations", operations.MIGRATIONS)])
    views = OperationsViews(db)
    items, _ = await views.reservations(station_id=None, status=None, limit=10)
    assert [(r["reservation_id"], r["status"]) for r in items] == [(2, "Used"), (1, "Active")]
    assert [await views.next_reservation_id() for _ in range(2)] == [3, 4]
