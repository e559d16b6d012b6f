"""Garbage in: the right OCPP CallError or HTTP status comes out, and nobody else notices."""

from __future__ import annotations

import httpx
import orjson
import pytest
import trio
import trio.lowlevel
from trio_websocket import ConnectionRejected, open_websocket_url

from devcluster.station import CallErrorReply, SimulatedStation
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration


async def _call_error(cp: SimulatedStation, action: str, payload: dict[str, object]) -> CallErrorReply:
    with pytest.raises(CallErrorReply) as caught:
        await cp.call(action, payload)
    return caught.value


async def test_not_json_gets_formation_violation_with_id_minus_one(csms: Running) -> None:
    await csms.put_station("CP-B")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-B") as cp:
        await cp.send_raw("this is not json")
        frame = await cp.receive_raw()
        assert frame[:3] == [4, "-1", "FormationViolation"]
        await cp.send_raw('{"an": "object, not an array"}')
        assert (await cp.receive_raw())[:3] == [4, "-1", "FormationViolation"]
        # The connection survives and keeps serving.
        assert "currentTime" in await cp.call("Heartbeat", {})


async def test_schema_violations_get_specific_codes(csms: Running) -> None:
    await csms.put_station("CP-V")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-V") as cp:
        wrong_type = await _call_error(
            cp,
            "StartTransaction",
            {"connectorId": "one", "idTag": "T", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"},
        )
        assert wrong_type.code == "TypeConstraintViolation"
        assert "connectorId" in wrong_type.description
        missing = await _call_error(cp, "StartTransaction", {"connectorId": 1, "idTag": "T"})
        assert missing.code == "OccurenceConstraintViolation"
        too_long = await _call_error(cp, "Authorize", {"idTag": "X" * 21})
        assert too_long.code == "PropertyConstraintViolation"
        bad_enum = await _call_error(
            cp, "StatusNotification", {"connectorId": 1, "status": "Exploded", "errorCode": "NoError"}
        )
        assert bad_enum.code == "PropertyConstraintViolation"


async def test_unknown_and_unsupported_actions(csms: Running) -> None:
    await csms.put_station("CP-A")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-A") as cp:
        # OCPP 1.6 section 4.2.3: NotImplemented for an action the receiver does not know...
        assert (await _call_error(cp, "MakeCoffee", {})).code == "NotImplemented"
        # ...NotSupported for one it knows but does not serve (a CSMS-to-station action sent the wrong way).
        assert (await _call_error(cp, "Reset", {"type": "Soft"})).code == "NotSupported"


async def test_oversized_frame(csms: Running) -> None:
    await csms.put_station("CP-BIG")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-BIG") as cp:
        big = orjson.dumps([2, "big-1", "DataTransfer", {"vendorId": "v", "data": "x" * 70_000}]).decode()
        await cp.send_raw(big)
        # Too big to parse, yet answered with its own id (sniffed from the head) and the 1.6 error for it.
        assert await cp.receive_raw() == [4, "big-1", "FormationViolation", "message exceeds 65536 bytes", {}]
        assert "currentTime" in await cp.call("Heartbeat", {})


async def _rejected_status(
    url: str, *, subprotocols: list[str] | None = None, headers: list[tuple[bytes, bytes]] | None = None
) -> int:
    with pytest.raises(ConnectionRejected) as caught:
        async with open_websocket_url(url, subprotocols=subprotocols or ["ocpp1.6"], extra_headers=headers or []):
            pass
    return int(caught.value.status_code)


async def test_handshake_refusals(csms: Running) -> None:
    await csms.put_station("CP-P", password="right-password")
    base = csms.ocpp_url
    assert await _rejected_status(f"{base}/NOT-REGISTERED") == 404
    assert await _rejected_status(f"{base}/CP-P") == 401  # no credentials
    with pytest.raises(ConnectionRejected) as wrong:
        async with SimulatedStation.connect(base, "CP-P", password="wrong-password"):
            pass
    assert wrong.value.status_code == 401
    assert await _rejected_status(f"{base}/CP-P", subprotocols=["ocpp0.1"]) == 400
    assert await _rejected_status(f"{base}/bad%20id") == 400
    assert await _rejected_status(base.replace("/ocpp", "/elsewhere") + "/CP-P") == 404
    async with SimulatedStation.connect(base, "CP-P", password="right-password") as cp:
        assert "currentTime" in await cp.call("Heartbeat", {})


async def test_missing_subprotocol_is_refused(csms: Running) -> None:
    await csms.put_station("CP-NS")
    with pytest.raises(ConnectionRejected) as caught:
        async with SimulatedStation.connect(csms.ocpp_url, "CP-NS", subprotocols=[]):
            pass
    assert caught.value.status_code == 400


@pytest.mark.parametrize("replica_overrides", [{"CSMS_REGISTRATION": "auto"}])
async def test_auto_registration(csms: Running) -> None:
    async with SimulatedStation.connect(csms.ocpp_url, "CP-NEW") as cp:
        assert (await cp.boot())["status"] == "Accepted"
    async with csms.api() as api:
        station = (await api.get("/api/v1/stations/CP-NEW")).json()
    assert station["auto_registered"] is True


async def test_newest_connection_wins_on_one_replica(csms: Running) -> None:
    await csms.put_station("CP-TWICE")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-TWICE") as old,
        SimulatedStation.connect(csms.ocpp_url, "CP-TWICE") as new,
    ):
        assert "currentTime" in await new.call("Heartbeat", {})
        with trio.fail_after(5):
            while old.ws.closed is None:
                await trio.sleep(0.02)
        assert old.ws.closed.code == 1001
        assert "currentTime" in await new.call("Heartbeat", {})


async def test_misbehaving_station_does_not_disturb_another(csms: Running) -> None:
    await csms.put_station("CP-BAD")
    await csms.put_station("CP-GOOD")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-BAD") as bad,
        SimulatedStation.connect(csms.ocpp_url, "CP-GOOD") as good,
        trio.open_nursery() as nursery,
    ):

        async def spew() -> None:
            for i in range(300):
                await bad.send_raw(["garbage", "[1,2,3]", "[2]", '[2,"x","Nope",{}]', "\x00\xff"][i % 5])
                await trio.lowlevel.checkpoint()

        nursery.start_soon(spew)
        tx = (await good.start_transaction(1, "TAG", 0))["transactionId"]
        for wh in range(100, 1100, 100):
            await good.meter_values(1, tx, wh)
        assert await good.stop_transaction(tx, 1000) == {}
    async with csms.api() as api:
        assert (await api.get(f"/api/v1/transactions/{tx}")).json()["energy_wh"] == 1000


PATH_ID_ROUTES = [
    ("GET", "/api/v1/stations/{}"),
    ("PUT", "/api/v1/stations/{}"),
    ("DELETE", "/api/v1/stations/{}"),
    ("GET", "/api/v1/transactions/{}"),
    ("GET", "/api/v1/id-tags/{}"),
    ("PUT", "/api/v1/id-tags/{}"),
    ("DELETE", "/api/v1/id-tags/{}"),
    ("GET", "/api/v1/commands/{}"),
    ("POST", "/api/v1/stations/{}/commands/Reset"),
    ("POST", "/api/v1/stations/CP-1/commands/{}"),
    ("GET", "/api/v1/stations/{}/operations"),
    ("POST", "/api/v1/stations/{}/local-list"),
    ("GET", "/api/v1/reservations/{}"),
    ("GET", "/api/v1/charging-profiles/{}"),
    ("PUT", "/api/v1/charging-profiles/{}"),
    ("DELETE", "/api/v1/charging-profiles/{}"),
]


@pytest.mark.parametrize("raw_id", ["%FF", "A%C3", "%ED%A0%80", "%00"])
async def test_path_ids_that_are_not_utf8_text_get_400(csms: Running, raw_id: str) -> None:
    async with csms.api() as api:
        for method, template in PATH_ID_ROUTES:
            url = httpx.URL(csms.api_url + template.format(raw_id))
            response = await api.request(method, url, json={})
            assert response.status_code == 400, (method, template, response.text)
            assert response.json()["error"]["message"], response.text


@pytest.mark.parametrize("replica_overrides", [{"CSMS_INTERNAL_SECRET": "s3cret-for-tests"}])
async def test_internal_endpoints_take_integers_not_booleans(csms: Running) -> None:
    execute = {"command_id": 1, "station_id": "CP-X", "action": "Reset", "payload": {"type": "Soft"}, "timeout": 1}
    bad_bodies = [
        ("/internal/v1/shed", {"count": True}),
        ("/internal/v1/shed", {"count": 1.0}),
        ("/internal/v1/shed", {"count": "1"}),
        ("/internal/v1/shed", {"count": 2**40}),
        ("/internal/v1/commands/execute", {**execute, "command_id": True}),
        ("/internal/v1/commands/execute", {**execute, "command_id": "7"}),
        ("/internal/v1/commands/execute", {**execute, "command_id": 2**63}),
        ("/internal/v1/commands/execute", {**execute, "timeout": True}),
        ("/internal/v1/commands/execute", {**execute, "station_id": 5}),
        ("/internal/v1/commands/execute", {**execute, "payload": [1]}),
    ]
    async with csms.api() as api:
        headers = {"X-CSMS-Internal-Secret": "s3cret-for-tests"}
        for path, body in bad_bodies:
            response = await api.post(path, json=body, headers=headers)
            assert response.status_code == 400, (path, body, response.text)
            assert response.json()["error"]["message"]
        assert (await api.post("/internal/v1/shed", json={"count": 0}, headers=headers)).json() == {"shed": 0}
