"""One station message = one unit of work: one group-commit write per message, and all of it or nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from csms.storage import Database, SecondWrite, Statement, unit_of_work
from devcluster import station201 as v201
from devcluster.station import SimulatedStation, accept_everything, now_iso
from devcluster.v201_calls import answer_v201
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration


async def _diagnostics_file(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    if action == "GetDiagnostics":
        return {"fileName": "diag.tar.gz"}
    return await accept_everything(action, payload)


async def _writes(api: httpx.AsyncClient) -> tuple[float, float]:
    """(writes committed, commits) by the group-commit writer so far, from the replica's own metrics."""
    found: dict[str, float] = {}
    for line in (await api.get("/metrics")).text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("csms_db_group_commit_batch_size_sum", "csms_db_group_commit_batch_size_count"):
            found[name] = float(value)
    return found["csms_db_group_commit_batch_size_sum"], found["csms_db_group_commit_batch_size_count"]


async def _command(api: httpx.AsyncClient, station: str, action: str, payload: dict[str, Any]) -> None:
    response = await api.post(f"/api/v1/stations/{station}/commands/{action}", json=payload)
    assert response.status_code == 200 and response.json()["status"] == "completed", response.text


async def test_every_station_message_commits_once(csms: Running) -> None:
    """Only station messages write through the group-commit writer, and this station sends one at a time: so
    the writer's counters grow by exactly the writes and commits of each message."""
    await csms.put_station("CP-U")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-U", answer=_diagnostics_file) as cp,
        csms.api() as api,
    ):
        await cp.boot()
        expiry = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
        reservation = {"connectorId": 1, "expiryDate": expiry, "idTag": "TAG", "reservationId": 5}
        await _command(api, "CP-U", "ReserveNow", reservation)
        await _command(api, "CP-U", "RemoteStartTransaction", {"connectorId": 1, "idTag": "TAG"})
        await _command(api, "CP-U", "UpdateFirmware", {"location": "https://fw.example/1.bin", "retrieveDate": expiry})
        await _command(api, "CP-U", "GetDiagnostics", {"location": "ftp://diag.example/"})
        start = {"connectorId": 1, "idTag": "TAG", "meterStart": 10, "timestamp": now_iso(), "reservationId": 5}
        messages: list[tuple[str, dict[str, Any]]] = [
            ("BootNotification", {"chargePointVendor": "SimCo", "chargePointModel": "Sim-1"}),
            ("StatusNotification", {"connectorId": 1, "status": "Preparing", "errorCode": "NoError"}),
            ("StartTransaction", start),  # ledger start + reservation used + remote start matched + marked
            ("FirmwareStatusNotification", {"status": "Downloading"}),  # notification + job status
            ("DiagnosticsStatusNotification", {"status": "Uploaded"}),
            ("DataTransfer", {"vendorId": "SimCo"}),
        ]
        transaction_id = None
        for action, payload in messages:
            before = await _writes(api)
            answer = await cp.call(action, payload)
            assert await _writes(api) == (before[0] + 1, before[1] + 1), action
            transaction_id = answer.get("transactionId", transaction_id)
        assert transaction_id is not None
        for action, payload in [
            ("MeterValues", {"connectorId": 1, "transactionId": transaction_id, "meterValue": [_sample(20)]}),
            ("StopTransaction", {"transactionId": transaction_id, "meterStop": 30, "timestamp": now_iso()}),
        ]:
            before = await _writes(api)
            await cp.call(action, payload)
            assert await _writes(api) == (before[0] + 1, before[1] + 1), action
        for action, payload in [("Authorize", {"idTag": "TAG"}), ("Heartbeat", {})]:
            before = await _writes(api)
            await cp.call(action, payload)
            assert await _writes(api) == before, action  # a read; last-seen liveness only: no write at all

        started = (await api.get(f"/api/v1/transactions/{transaction_id}")).json()
        reservations = (await api.get("/api/v1/reservations", params={"station_id": "CP-U"})).json()["items"]
        jobs = (await api.get("/api/v1/stations/CP-U/operations")).json()["jobs"]
    # Every part of the composed messages landed.
    assert started["remote_started"] is True
    assert [(r["status"], r["transaction_id"]) for r in reservations] == [("Used", transaction_id)]
    assert {j["kind"]: j["status"] for j in jobs} == {"firmware": "Downloading", "diagnostics": "Uploaded"}


def _sample(wh: int) -> dict[str, Any]:
    return {"timestamp": now_iso(), "sampledValue": [{"value": str(wh)}]}


async def test_start_transaction_is_all_or_nothing(csms: Running) -> None:
    """A start that answers a remote start is one composed write: a failure in its second part (the operations
    module's remote-start match, made to fail by a real trigger) leaves no transaction behind, and the station's
    retry then starts exactly one, linked to the remote start."""
    await csms.put_station("CP-A")
    async with (
        Database.open(csms.database_url, pool_size=1) as db,
        SimulatedStation.connect(csms.ocpp_url, "CP-A") as cp,
        csms.api() as api,
    ):
        await cp.boot()
        await _command(api, "CP-A", "RemoteStartTransaction", {"connectorId": 1, "idTag": "TAG"})
        await db.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'remote starts refused by the test'; END$$;"
            " CREATE TRIGGER refuse BEFORE UPDATE ON remote_starts FOR EACH STATEMENT EXECUTE FUNCTION refuse()"
        )
        start = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": now_iso()}
        with pytest.raises(Exception, match="InternalError"):
            await cp.call("StartTransaction", start)
        assert await db.fetchval("SELECT count(*) FROM transactions") == 0
        await db.execute("DROP TRIGGER refuse ON remote_starts")
        first = await cp.call("StartTransaction", start)
        assert await db.fetchval("SELECT array_agg(id) FROM transactions") == [first["transactionId"]]
        assert await db.fetchval("SELECT transaction_id FROM remote_starts") == first["transactionId"]
        assert await db.fetchval("SELECT remote_started FROM transactions") is True


async def test_merged_start_and_stop_are_all_or_nothing(csms: Running) -> None:
    """A plain start or stop is merged statements (one per kind per write batch): when its outbox event fails
    (a real trigger), neither the transaction nor its samples are kept, and the retry is kept exactly once."""
    await csms.put_station("CP-M")
    async with Database.open(csms.database_url, pool_size=1) as db:
        await db.execute(
            "CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN IF NEW.type LIKE 'csms.transaction.%' THEN RAISE EXCEPTION 'refused by the test'; END IF;"
            " RETURN NEW; END$$;"
            " CREATE TRIGGER refuse BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse_event()"
        )
        async with SimulatedStation.connect(csms.ocpp_url, "CP-M") as cp:
            await cp.boot()
            start = {"connectorId": 1, "idTag": "TAG", "meterStart": 100, "timestamp": now_iso()}
            with pytest.raises(Exception, match="InternalError"):
                await cp.call("StartTransaction", start)
            assert await db.fetchval("SELECT count(*) FROM transactions") == 0
            await db.execute("DROP TRIGGER refuse ON outbox")
            tx = (await cp.call("StartTransaction", start))["transactionId"]
            assert (await cp.call("StartTransaction", start))["transactionId"] == tx  # a retry: the same one

            await db.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse_event()"
            )
            stop = {"transactionId": tx, "meterStop": 250, "timestamp": now_iso(), "transactionData": [_sample(250)]}
            with pytest.raises(Exception, match="InternalError"):
                await cp.call("StopTransaction", stop)
            assert await db.fetchval("SELECT stop_received_at FROM transactions") is None
            assert await db.fetchval("SELECT count(*) FROM meter_values") == 0
            await db.execute("DROP TRIGGER refuse ON outbox")
            await cp.call("StopTransaction", stop)
            await cp.call("StopTransaction", stop)  # a retry: already stopped, nothing new
        assert await db.fetchval("SELECT meter_stop FROM transactions") == 250
        assert await db.fetchval("SELECT count(*) FROM meter_values WHERE transaction_id = $1", tx) == 1
        events = await db.fetch("SELECT type, payload FROM outbox WHERE type LIKE 'csms.transaction.%' ORDER BY seq")
        assert [(e["type"], e["payload"]["transaction_id"]) for e in events] == [
            ("csms.transaction.started.v1", tx),
            ("csms.transaction.ended.v1", tx),
        ]
        assert events[1]["payload"]["energy_wh"] == 150


async def test_a_second_write_in_one_unit_of_work_is_refused(db: Database) -> None:
    await db.execute("CREATE TABLE t (n int)")
    insert = [Statement("INSERT INTO t VALUES (1)")]
    with unit_of_work():
        await db.write_statements(insert)
        with pytest.raises(SecondWrite):
            await db.write_statements(insert)
    await db.write_statements(insert)  # outside: no limit
    assert await db.fetchval("SELECT count(*) FROM t") == 2


async def test_ocpp201_reports_that_close_a_job_or_reservation_commit_once(csms: Running) -> None:
    """2.0.1 keeps the report and ties it to its job (by requestId) or reservation: two modules' tables, one
    write; a TransactionEvent with the reservation and remote start it answers is one write too."""
    await csms.put_station("CP-U201")
    token = {"idToken": "TAG", "type": "ISO14443"}
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-U201", subprotocols=v201.SUBPROTOCOL_201, answer=answer_v201) as cp,
        csms.api() as api,
    ):
        await cp.call("BootNotification", v201.boot())
        expiry = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
        for reservation_id in (5, 6):
            await _command(
                api, "CP-U201", "ReserveNow", {"id": reservation_id, "expiryDateTime": expiry, "idToken": token}
            )
        await _command(
            api,
            "CP-U201",
            "UpdateFirmware",
            {"requestId": 7, "firmware": {"location": "https://fw/1.bin", "retrieveDateTime": expiry}},
        )
        await _command(api, "CP-U201", "RequestStartTransaction", {"remoteStartId": 9, "idToken": token, "evseId": 1})
        started = v201.transaction_event(
            "Started", "tx-u", 0, id_token="TAG", evse_id=1, connector_id=1, remote_start_id=9
        )
        for action, payload, answer in [
            ("FirmwareStatusNotification", {"status": "Installed", "requestId": 7}, {}),
            ("LogStatusNotification", {"status": "Uploaded", "requestId": 8}, {}),
            ("ReservationStatusUpdate", {"reservationId": 5, "reservationUpdateStatus": "Expired"}, {}),
            ("TransactionEvent", {**started, "reservationId": 6}, None),
        ]:
            before = await _writes(api)
            reply = await cp.call(action, payload)
            assert answer is None or reply == answer
            assert await _writes(api) == (before[0] + 1, before[1] + 1), action
        reservations = (await api.get("/api/v1/reservations", params={"station_id": "CP-U201"})).json()["items"]
        jobs = (await api.get("/api/v1/stations/CP-U201/operations")).json()["jobs"]
        [transaction] = (await api.get("/api/v1/transactions", params={"station_id": "CP-U201"})).json()["items"]
    assert {r["reservation_id"]: (r["status"], r["transaction_id"]) for r in reservations} == {
        5: ("Expired", None),
        6: ("Used", transaction["id"]),
    }
    assert [(j["kind"], j["status"]) for j in jobs] == [("firmware", "Installed")]
    assert transaction["remote_started"] is True
