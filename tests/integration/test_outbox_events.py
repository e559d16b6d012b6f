"""The outbox: every committed change is exactly one event, in the change's own transaction, in station order;
retried station messages add none; every event matches its published schema; the pull API pages by cursor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import fastjsonschema
import httpx
import orjson
import pytest
import trio

from csms.app import MIGRATIONS
from csms.outbox import SCHEMAS, Cursor, Event, OutboxReader, emit, event_statement, full_type
from csms.storage import Connection, Database, Fence, FenceRejected
from csms.transactions import SampledValue, TransactionLedger
from devcluster import station201 as v201
from devcluster.station import SimulatedStation, now_iso
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration

VALIDATORS = {full_type(name): fastjsonschema.compile(schema) for name, schema in SCHEMAS.items()}


async def all_events(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = "0-0"
    while True:
        response = await client.get("/api/v1/events", params={"after": after, "limit": 50, **params})
        assert response.status_code == 200, response.text
        body = response.json()
        events += body["items"]
        if not body["items"]:
            return events
        after = body["next"]


def kinds(events: list[dict[str, Any]], station: str) -> list[str]:
    return [e["type"].removeprefix("csms.") for e in events if e["subject"] == station]


async def test_a_charging_session_emits_each_change_once_in_order(csms: Running) -> None:
    await csms.put_station("CP-EV")
    await csms.put_id_tag("TAG-EV")
    start_ts = now_iso()
    async with SimulatedStation.connect(csms.ocpp_url, "CP-EV") as cp:
        await cp.boot()
        await cp.status(1, "Preparing")
        tx = (await cp.start_transaction(1, "TAG-EV", 1000, timestamp=start_ts))["transactionId"]
        # A retried StartTransaction (new message id, same content) is no new change: no new event.
        assert (await cp.start_transaction(1, "TAG-EV", 1000, timestamp=start_ts))["transactionId"] == tx
        sample_ts = now_iso()
        await cp.meter_values(1, tx, 1500, timestamp=sample_ts)
        await cp.meter_values(1, tx, 1500, timestamp=sample_ts)  # retried: the samples are stored once
        await cp.stop_transaction(tx, 2500)
        await cp.stop_transaction(tx, 2500)  # retried: already stopped
    async with csms.api() as client:
        events = await all_events(client)
        mine = [e for e in events if e["subject"] == "CP-EV"]
        station_kinds = kinds(events, "CP-EV")
        assert station_kinds[0] == "station.registered.v1"
        assert [k for k in station_kinds if not k.startswith("station.ownership_moved") and "connected" not in k][
            1:
        ] == [
            "station.booted.v1",
            "connector.status_changed.v1",
            "transaction.started.v1",
            "meter_values.recorded.v1",
            "transaction.updated.v1",
            "transaction.ended.v1",
        ]
        assert "station.ownership_moved.v1" in station_kinds
        for event in events:
            VALIDATORS[event["type"]](event["data"])  # raises on a mismatch
            assert event["specversion"] == "1.0" and event["source"] == "urn:csms"
        assert len({e["id"] for e in events}) == len(events)
        by_type = {e["type"]: e["data"] for e in mine}
        assert by_type["csms.transaction.updated.v1"]["energy_so_far_wh"] == 500
        ended = by_type["csms.transaction.ended.v1"]
        assert (ended["energy_wh"], ended["reason"], ended["protocol"]) == (1500, "Local", "ocpp1.6")
        assert by_type["csms.transaction.started.v1"]["protocol"] == "ocpp1.6"
        # Filters and schemas.
        only = await all_events(client, type="transaction.ended.v1", station_id="CP-EV")
        assert [e["id"] for e in only] == [e["id"] for e in mine if e["type"] == "csms.transaction.ended.v1"]
        schemas = (await client.get("/api/v1/events/schemas")).json()
        assert set(schemas) == set(VALIDATORS)
        assert (await client.get("/api/v1/events", params={"after": "nope"})).status_code == 400
        assert (await client.get("/api/v1/events", params={"type": "no.such.v1"})).status_code == 400


async def test_operator_and_leader_changes_emit_events(csms: Running, db: Database) -> None:
    await csms.put_station("CP-OP")
    await csms.put_id_tag("TAG-OP")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-OP") as cp:
        tx = (await cp.start_transaction(1, "TAG-OP", 0))["transactionId"]
        tx2 = (await cp.start_transaction(2, "TAG-OP", 0))["transactionId"]
    async with csms.api() as client:
        response = await client.post(f"/api/v1/transactions/{tx}/close", json={"reason": "stuck"})
        assert response.status_code == 200, response.text
        assert (await client.delete("/api/v1/id-tags/TAG-OP")).status_code == 204
    assert await TransactionLedger(db).close_abandoned(0) == 1  # tx2
    async with csms.api() as client:
        events = await all_events(client)
    ended = {e["data"]["transaction_id"]: e["data"]["reason"] for e in events if e["type"].endswith("ended.v1")}
    assert ended == {tx: "ClosedByOperator", tx2: "Abandoned"}
    tag_events = [e["data"] for e in events if e["type"] == "csms.id_tag.changed.v1"]
    assert [t["deleted"] for t in tag_events] == [False, True]


async def test_a_rejected_write_leaves_no_event(csms: Running, db: Database) -> None:
    """No event without its change: a write refused by its fence rolls its event back with it."""
    await csms.put_station("CP-FX")
    ledger = TransactionLedger(db)
    current = await db.record_fence("CP-FX", 1, 5, "other-node")
    assert current is not None
    stale = Fence("CP-FX", current + 1)  # not the station's current fence
    before = await db.fetchval("SELECT count(*) FROM outbox WHERE station_id = 'CP-FX'")
    sample = SampledValue(timestamp=datetime.now(UTC), value="10")
    with pytest.raises(FenceRejected):
        await ledger.meter_values(
            stale, connector_id=1, transaction_id=None, received_at=sample.timestamp, samples=[sample]
        )
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE station_id = 'CP-FX'") == before


async def test_live_tail_streams_new_events_as_server_sent_events(csms: Running) -> None:
    await csms.put_station("CP-SSE")
    async with csms.api() as client:
        page = (await client.get("/api/v1/events", params={"limit": 1000})).json()
        headers = {"Accept": "text/event-stream"}
        async with client.stream("GET", "/api/v1/events", params={"after": page["next"]}, headers=headers) as tail:
            assert tail.headers["content-type"].startswith("text/event-stream")
            await csms.put_id_tag("TAG-SSE")  # a change after the tail started
            lines = tail.aiter_lines()
            with trio.fail_after(10):
                event_id = await anext(lines)
                data = await anext(lines)
    assert event_id.startswith("id: ") and data.startswith("data: ")
    event = orjson.loads(data.removeprefix("data: "))
    assert event["type"] == "csms.id_tag.changed.v1" and event["sequence"] == event_id.removeprefix("id: ")


async def test_an_ocpp201_session_emits_the_same_catalogue_events(csms: Running) -> None:
    """Events come from the domain modules' writes, not from a protocol's handlers: 2.0.1 emits the same types."""
    await csms.put_station("CP-EV201")
    await csms.put_id_tag("TOKEN-E")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-EV201", subprotocols=v201.SUBPROTOCOL_201) as cp:
        await cp.call("BootNotification", v201.boot())
        await cp.call("StatusNotification", v201.status(1, 1, "Occupied"))
        started = v201.transaction_event("Started", "TX-E", 0, wh=1000, id_token="TOKEN-E", evse_id=1, connector_id=1)
        await cp.call("TransactionEvent", started)
        await cp.call("TransactionEvent", started)  # a retry: no second event
        await cp.call("TransactionEvent", v201.transaction_event("Updated", "TX-E", 1, wh=1500))
        await cp.call("TransactionEvent", v201.transaction_event("Ended", "TX-E", 2, wh=2200, stopped_reason="Local"))
        security = {"type": "FirmwareUpdated", "timestamp": "2030-01-01T10:00:00Z"}
        await cp.call("SecurityEventNotification", security)
        await cp.call("SecurityEventNotification", security)  # kept twice in the security log: two events
    async with csms.api() as client:
        events = await all_events(client, station_id="CP-EV201")
    for event in events:
        VALIDATORS[event["type"]](event["data"])
    station_kinds = [k for k in kinds(events, "CP-EV201") if "ownership" not in k and "connected" not in k]
    assert station_kinds == [
        "station.registered.v1",
        "station.booted.v1",
        "connector.status_changed.v1",
        "meter_values.recorded.v1",
        "transaction.started.v1",
        "meter_values.recorded.v1",
        "transaction.updated.v1",
        "meter_values.recorded.v1",
        "transaction.ended.v1",
        "security.event.v1",
        "security.event.v1",
    ]
    data = {e["type"]: e["data"] for e in events}
    assert data["csms.transaction.started.v1"]["protocol"] == "ocpp2.0.1"
    assert data["csms.transaction.updated.v1"]["energy_so_far_wh"] == 500
    ended = data["csms.transaction.ended.v1"]
    assert (ended["energy_wh"], ended["reason"], ended["protocol"]) == (1200, "Local", "ocpp2.0.1")


async def test_ocpp201_events_follow_arrival_not_seq_no_and_skip_repeats(csms: Running) -> None:
    """An offline batch arriving out of order: the first event to arrive starts the transaction (whatever its
    type), later new ones update or end it; a retry and a conflicting repeat of a kept seqNo add nothing."""
    await csms.put_station("CP-EV201B")
    at = [f"2030-01-01T10:0{n}:00Z" for n in range(4)]
    started = v201.transaction_event("Started", "TX-B", 0, timestamp=at[0], wh=1000, evse_id=1, connector_id=1)
    updated = v201.transaction_event("Updated", "TX-B", 1, timestamp=at[1], wh=1500)
    conflicting = v201.transaction_event("Updated", "TX-B", 1, timestamp=at[2], wh=9999)
    ended = v201.transaction_event("Ended", "TX-B", 2, timestamp=at[3], wh=2000, stopped_reason="Local")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-EV201B", subprotocols=v201.SUBPROTOCOL_201) as cp:
        await cp.call("BootNotification", v201.boot())
        for payload in (updated, updated, started, conflicting, ended, ended):
            await cp.call("TransactionEvent", payload)
    async with csms.api() as client:
        events = await all_events(client, station_id="CP-EV201B")
    for event in events:
        VALIDATORS[event["type"]](event["data"])
    tx_kinds = [k for k in kinds(events, "CP-EV201B") if k.startswith(("transaction.", "meter_values."))]
    assert tx_kinds == [
        "meter_values.recorded.v1",
        "transaction.started.v1",  # the Updated that arrived first
        "meter_values.recorded.v1",
        "transaction.updated.v1",  # the Started that arrived second
        "meter_values.recorded.v1",
        "transaction.ended.v1",
    ]
    data = [e["data"] for e in events if e["type"].startswith("csms.transaction.")]
    assert data[0]["meter_start_wh"] == 1500 and data[1]["meter_wh"] == 1500  # derived from all kept so far
    assert (data[1]["energy_so_far_wh"], data[2]["energy_wh"]) == (500, 1000)


async def test_one_bulk_statement_keeps_order_and_counts_a_repeated_key_once(db: Database) -> None:
    """A batch's events go to Postgres as one statement: rows keep their order (seq), and a dedup key repeated
    within it (a retried message whose first copy is in the same batch) is inserted once, like one already
    in the table."""
    await db.migrate(MIGRATIONS)

    def status(n: int, key: str | None) -> Event:
        return Event("station.registered.v1", "station", "CP-BULK", "CP-BULK", {"station_id": "CP-BULK", "n": n}, key)

    await db.write_statements([event_statement(status(0, "k-table"))])

    async def op(conn: Connection) -> None:
        await emit(conn, status(1, None), status(2, "k-batch"), status(3, "k-batch"), status(4, "k-table"))
        await emit(conn, status(5, None), status(6, None))

    await db.write(op)
    rows = await db.fetch("SELECT payload FROM outbox WHERE station_id = 'CP-BULK' ORDER BY txid, seq")
    assert [r["payload"]["n"] for r in rows] == [0, 1, 2, 5, 6]


async def test_pages_and_head_follow_transaction_order_where_txids_gain_a_digit(db: Database) -> None:
    """Four events in four transactions whose ids cross a power of ten (999 -> 1000 as text sorts wrongly):
    pages of one come in commit order, each event once, and the head is the last of them."""
    await db.migrate(MIGRATIONS)
    current = int(await db.fetchval("SELECT pg_current_xact_id()::text"))
    boundary = 10 ** len(str(current + 10))
    # Subtransactions that write each take an id from the same counter: burn up to two before the boundary.
    await db.execute(
        "CREATE TEMP TABLE burn (n int);"
        f"DO $$ BEGIN FOR i IN 1..{boundary - current - 4} LOOP"
        " BEGIN INSERT INTO burn VALUES (i); EXCEPTION WHEN others THEN NULL; END; END LOOP; END $$"
    )
    for n in range(4):
        event = Event("station.registered.v1", "station", "CP-DIGIT", "CP-DIGIT", {"station_id": "CP-DIGIT", "n": n})
        await db.write_statements([event_statement(event)])
    txids = [int(r["txid"]) for r in await db.fetch("SELECT txid::text FROM outbox WHERE station_id = 'CP-DIGIT'")]
    assert min(txids) < boundary <= max(txids)  # the ids did gain a digit
    reader = OutboxReader(db, "test")
    seen, cursor = [], Cursor.parse(None)
    for _ in range(10):
        page, cursor = await reader.page(cursor, limit=1, station_id="CP-DIGIT")
        seen += [e["data"]["n"] for e in page]
    assert seen == [0, 1, 2, 3]
    assert await reader.head() == cursor
