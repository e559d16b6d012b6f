"""The REST API: auth and roles, validation with readable 4xx bodies, CRUD, filters, health and metrics."""

from __future__ import annotations

import httpx
import pytest

from devcluster.station import SimulatedStation
from tests.integration.conftest import READ_TOKEN, Running

pytestmark = pytest.mark.integration


async def test_tokens_and_roles(csms: Running) -> None:
    async with httpx.AsyncClient(base_url=csms.api_url) as anonymous:
        response = await anonymous.get("/api/v1/stations")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        bad = await anonymous.get("/api/v1/stations", headers={"Authorization": "Bearer nope-nope-nope"})
        assert bad.status_code == 401
    async with csms.api(READ_TOKEN) as reader:
        assert (await reader.get("/api/v1/stations")).status_code == 200
        forbidden = await reader.put("/api/v1/stations/CP-X", json={})
        assert forbidden.status_code == 403
        assert "read" in forbidden.json()["error"]["message"]


async def test_station_crud_and_validation(csms: Running) -> None:
    async with csms.api() as api:
        created = await api.put("/api/v1/stations/CP-1", json={"password": "long-enough-pw", "description": "lab"})
        assert created.status_code == 201
        body = created.json()
        assert body["has_password"] is True and "password_hash" not in body
        assert body["connected"] is False
        updated = await api.put("/api/v1/stations/CP-1", json={"boot_status": "Pending"})
        assert updated.status_code == 200
        assert updated.json()["has_password"] is True  # fields not sent keep their value
        assert updated.json()["description"] == "lab"

        for payload, needle in (
            ({"password": "short"}, "password"),
            ({"boot_status": "Maybe"}, "boot_status"),
            ({"colour": "red"}, "colour"),
        ):
            response = await api.put("/api/v1/stations/CP-1", json=payload)
            assert response.status_code == 422, payload
            assert needle in response.json()["error"]["message"]
        not_json = await api.put(
            "/api/v1/stations/CP-1", content=b"{oops", headers={"Content-Type": "application/json"}
        )
        assert not_json.status_code == 400
        assert (await api.put("/api/v1/stations/bad%20id", json={})).status_code == 400

        listed = (await api.get("/api/v1/stations")).json()
        assert [s["id"] for s in listed["items"]] == ["CP-1"]
        assert (await api.get("/api/v1/stations/NOPE")).status_code == 404
        assert (await api.delete("/api/v1/stations/CP-1")).status_code == 204
        assert (await api.delete("/api/v1/stations/CP-1")).status_code == 404


async def test_id_tags_crud(csms: Running) -> None:
    async with csms.api() as api:
        put = await api.put(
            "/api/v1/id-tags/TAG-1",
            json={"status": "Accepted", "expiry_date": "2030-01-01T00:00:00Z", "parent_id_tag": "P"},
        )
        assert put.status_code == 201
        assert put.json()["expiry_date"].startswith("2030-01-01")
        assert (await api.put("/api/v1/id-tags/TAG-1", json={"status": "Blocked"})).status_code == 200
        assert (await api.get("/api/v1/id-tags/TAG-1")).json()["status"] == "Blocked"
        bad = await api.put("/api/v1/id-tags/TAG-1", json={"status": "Sure"})
        assert bad.status_code == 422 and "status" in bad.json()["error"]["message"]
        bad_date = await api.put("/api/v1/id-tags/TAG-1", json={"expiry_date": "tomorrow"})
        assert bad_date.status_code == 422
        assert (await api.put("/api/v1/id-tags/" + "X" * 37, json={})).status_code == 400
        assert [t["id_tag"] for t in (await api.get("/api/v1/id-tags")).json()["items"]] == ["TAG-1"]
        assert (await api.delete("/api/v1/id-tags/TAG-1")).status_code == 204
        assert (await api.get("/api/v1/id-tags/TAG-1")).status_code == 404


async def test_transaction_filters_and_pagination(csms: Running) -> None:
    await csms.put_station("CP-T")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-T") as cp:
        ids = [(await cp.start_transaction(c, "TAG", 0))["transactionId"] for c in (1, 2, 3)]
        await cp.stop_transaction(ids[0], 10)
    async with csms.api() as api:
        active = (await api.get("/api/v1/transactions", params={"active": "true"})).json()["items"]
        assert sorted(t["id"] for t in active) == ids[1:]
        page = (await api.get("/api/v1/transactions", params={"limit": 2})).json()
        assert [t["id"] for t in page["items"]] == [ids[2], ids[1]]
        rest = (await api.get("/api/v1/transactions", params={"limit": 2, "before": page["next"]})).json()
        assert [t["id"] for t in rest["items"]] == [ids[0]]
        assert (await api.get("/api/v1/transactions", params={"since": "2999-01-01T00:00:00Z"})).json()["items"] == []
        assert (await api.get("/api/v1/transactions", params={"since": "soon"})).status_code == 400
        assert (await api.get("/api/v1/transactions", params={"active": "maybe"})).status_code == 400
        assert (await api.get("/api/v1/transactions/999999")).status_code == 404
        assert (await api.get("/api/v1/transactions/abc")).status_code == 400


async def test_health_ready_metrics(csms: Running) -> None:
    await csms.put_station("CP-M")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-M") as cp:
        await cp.call("Heartbeat", {})
        async with httpx.AsyncClient(base_url=csms.api_url) as client:
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["ready"] is True
            metrics = (await client.get("/metrics")).text
    assert "csms_stations_connected 1.0" in metrics
    assert 'csms_ocpp_messages_total{action="Heartbeat",direction="in",outcome="ok"} 1.0' in metrics
    assert "csms_ocpp_message_duration_seconds_bucket" in metrics
