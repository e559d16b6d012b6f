"""Values the schema allows but Postgres cannot hold: the sender gets the spec's CallError naming the field,
its neighbours in the write batch notice nothing, and the log stays quiet."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from csms.observability.logs import RepeatFilter
from devcluster.postgres import PostgresServer
from devcluster.station import CallErrorReply, SimulatedStation
from tests.integration.conftest import Running

AVAILABLE = {"connectorId": 0, "errorCode": "NoError", "status": "Available"}

pytestmark = pytest.mark.integration

START = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"}
STOP = {"transactionId": 1, "meterStop": 10, "timestamp": "2026-01-01T01:00:00Z"}
STATUS = {"connectorId": 1, "status": "Available", "errorCode": "NoError"}
METER = {"connectorId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": "1"}]}]}

# (action, payload, expected code, the field the description must start with)
BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("StartTransaction", {**START, "connectorId": 2**31}, "PropertyConstraintViolation", "connectorId"),
    ("StartTransaction", {**START, "meterStart": 2**63}, "PropertyConstraintViolation", "meterStart"),
    ("StartTransaction", {**START, "reservationId": 2**31}, "PropertyConstraintViolation", "reservationId"),
    (
        "StartTransaction",
        {**START, "timestamp": "9999-12-31T23:00:00-14:00"},
        "PropertyConstraintViolation",
        "timestamp",
    ),
    (
        "StartTransaction",
        {**START, "timestamp": "0001-01-01T00:00:00+01:00"},
        "PropertyConstraintViolation",
        "timestamp",
    ),
    ("StartTransaction", {**START, "idTag": "T\x00G"}, "PropertyConstraintViolation", "idTag"),
    ("StopTransaction", {**STOP, "transactionId": 2**31}, "PropertyConstraintViolation", "transactionId"),
    ("StopTransaction", {**STOP, "meterStop": -(2**63)}, "PropertyConstraintViolation", "meterStop"),
    ("StatusNotification", {**STATUS, "info": "a\x00"}, "PropertyConstraintViolation", "info"),
    (
        "MeterValues",
        {**METER, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": "1\x00"}]}]},
        "PropertyConstraintViolation",
        "meterValue[0].sampledValue[0].value",
    ),
    ("DataTransfer", {"vendorId": "v", "data": "\x00"}, "PropertyConstraintViolation", "data"),
]


async def _metric(csms: Running, name: str) -> float:
    async with httpx.AsyncClient(base_url=csms.api_url) as client:
        text = (await client.get("/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def _send_raw_call(cp: SimulatedStation, text: str) -> list[Any]:
    """JSON text orjson will not write (an unpaired surrogate): sent and read back raw."""
    await cp.send_raw(text)
    return await cp.receive_raw()


async def test_bad_values_get_the_field_s_call_error_and_never_reach_the_batch(
    csms: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    caplog.handler.addFilter(RepeatFilter(interval=3600))  # what configure_logging installs in a replica
    await csms.put_station("CP-BAD")
    good_ids = [f"CP-GOOD-{i}" for i in range(4)]
    for station_id in good_ids:
        await csms.put_station(station_id)
    rounds = 5
    good_errors: list[BaseException] = []

    async def good_station(station_id: str) -> None:
        async with SimulatedStation.connect(csms.ocpp_url, station_id) as cp:
            try:
                tx = (await cp.start_transaction(1, "TAG", 0))["transactionId"]
                for wh in range(1, 4 * rounds * len(BAD)):
                    await cp.meter_values(1, tx, wh)
                await cp.stop_transaction(tx, 1000)
            except Exception as exc:
                good_errors.append(exc)

    async with SimulatedStation.connect(csms.ocpp_url, "CP-BAD") as bad, trio.open_nursery() as nursery:
        for station_id in good_ids:
            nursery.start_soon(good_station, station_id)
        for _ in range(rounds):
            for action, payload, code, field in BAD:
                with pytest.raises(CallErrorReply) as caught:
                    await bad.call(action, payload)
                assert (caught.value.code, caught.value.description.split(" ")[0]) == (code, field), action
            surrogate = await _send_raw_call(bad, r'[2,"s-1","Authorize",{"idTag":"T\udc00"}]')
            assert surrogate[:3] == [4, "s-1", "TypeConstraintViolation"]
            assert surrogate[3].startswith("idTag ")
        assert "currentTime" in await bad.call("Heartbeat", {})  # the connection survives it all

    assert good_errors == []
    # Structural, not wall-clock: no write batch was rolled back or retried, no write failed.
    assert await _metric(csms, "csms_db_errors_total") == 0
    # One warning per kind per interval for the bad station, however many bad messages it sent.
    bad_lines = [r for r in caplog.records if getattr(r, "station_id", None) == "CP-BAD"]
    assert 1 <= len(bad_lines) <= 2, [r.getMessage() for r in bad_lines]
    assert not any(r.exc_info for r in caplog.records), "no traceback for a sender's mistake"


async def test_an_unpaired_surrogate_id_is_echoed(csms: Running) -> None:
    await csms.put_station("CP-SUR")
    async with open_websocket_url(f"{csms.ocpp_url}/CP-SUR", subprotocols=["ocpp1.6"]) as ws:
        await ws.send_message(r'[2,"id-\ud800","Heartbeat",{}]')
        with trio.fail_after(5):
            text = await ws.get_message()
        assert text.startswith(r'[4,"id-\ud800","FormationViolation",')
        assert json.loads(text)[1] == "id-\ud800"
        await ws.send_message('[2,"ok-1","Heartbeat",{}]')
        with trio.fail_after(5):
            assert json.loads(await ws.get_message())[:2] == [3, "ok-1"]


async def test_postgres_outage_answers_internal_error_with_one_log_line_per_interval(
    csms: Running, postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    caplog.handler.addFilter(RepeatFilter(interval=3600))
    ids = [f"CP-OUT-{i}" for i in range(5)]
    for station_id in ids:
        await csms.put_station(station_id)
    codes: list[str] = []

    async def station(station_id: str, connected: trio.Event, outage: trio.Event) -> None:
        async with SimulatedStation.connect(csms.ocpp_url, station_id) as cp:
            assert "currentTime" in await cp.call("Heartbeat", {})
            connected.set()
            await outage.wait()
            for _ in range(10):
                try:
                    # a write (a Heartbeat is liveness only and answers without Postgres)
                    await cp.call("StatusNotification", AVAILABLE, timeout=30)
                    codes.append("ok")
                except CallErrorReply as exc:
                    codes.append(exc.code)

    outage = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            for station_id in ids:
                connected = trio.Event()
                nursery.start_soon(station, station_id, connected, outage)
                await connected.wait()
            caplog.clear()
            postgres_server.stop()
            outage.set()
    finally:
        postgres_server.start()
    assert codes == ["InternalError"] * 50
    outage_lines = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(outage_lines) == 1, [r.getMessage() for r in caplog.records]
    assert not any(r.exc_info for r in caplog.records), [r.getMessage() for r in caplog.records if r.exc_info]


async def test_commands_refuse_what_storage_cannot_hold_both_ways(csms: Running) -> None:
    """An operator's payload and a station's answer meet the same storage domain as a station's call."""

    async def answer(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "GetConfiguration":
            return {"configurationKey": [{"key": "K", "readonly": True, "value": "v\x00"}]}
        return {"status": "Accepted"}

    await csms.put_station("CP-CMD")
    reserve = {"connectorId": 1, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "TAG", "reservationId": 2**31}
    async with SimulatedStation.connect(csms.ocpp_url, "CP-CMD", answer=answer), csms.api() as api:
        refused = await api.post("/api/v1/stations/CP-CMD/commands/ReserveNow", json=reserve)
        assert refused.status_code == 422, refused.text
        assert "reservationId" in refused.json()["error"]["message"]
        nul = await api.post("/api/v1/stations/CP-CMD/commands/ChangeConfiguration", json={"key": "K", "value": "\x00"})
        assert nul.status_code == 422, nul.text
        answered = await api.post("/api/v1/stations/CP-CMD/commands/GetConfiguration", json={})
        assert answered.json()["status"] == "call_error", answered.text
        assert "configurationKey[0].value" in answered.json()["error"]["description"]
        assert (
            await api.post("/api/v1/stations/CP-CMD/commands/ReserveNow", json={**reserve, "reservationId": 7})
        ).status_code == 200
