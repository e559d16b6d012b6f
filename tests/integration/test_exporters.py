"""Exporters against real sinks: a nats-server with JetStream, and a local HTTP webhook receiver."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import trio

from csms.config import load
from csms.storage import Database
from devcluster.nats import NatsServer
from devcluster.station import SimulatedStation
from tests.integration.conftest import Running, replica_env
from tests.integration.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration

SECRET = "webhook-test-secret"


async def outbox_ids(db_url: str) -> list[str]:
    async with Database.open(db_url, pool_size=1) as db:
        rows = await db.fetch("SELECT id::text AS id FROM outbox ORDER BY txid, seq")
    return [r["id"] for r in rows]


async def run_replica(nursery: trio.Nursery, database_url: str, **overrides: str) -> Running:
    config = load(environ=replica_env(database_url, CSMS_EXPORT_POLL_MS="20", **overrides))
    ports = await nursery.start(partial(_run, config))
    return Running(
        ocpp_url=f"ws://127.0.0.1:{ports['ocpp_port']}/ocpp",
        api_url=f"http://127.0.0.1:{ports['api_port']}",
        database_url=database_url,
    )


async def _run(config: Any, *, task_status: Any) -> None:
    from csms.app import run

    await run(config, task_status=task_status)


async def wait_until(check: Any, timeout: float = 20.0) -> None:
    with trio.fail_after(timeout):
        while not await check():
            await trio.sleep(0.2)


async def drive(running: Running, station: str, sessions: int = 3) -> None:
    await running.put_station(station)
    async with SimulatedStation.connect(running.ocpp_url, station) as cp:
        await cp.boot()
        for n in range(sessions):
            tx = (await cp.start_transaction(1, "TAG", 100 * n))["transactionId"]
            await cp.meter_values(1, tx, 100 * n + 50)
            await cp.stop_transaction(tx, 100 * n + 90)


async def test_jetstream_gets_every_event_once_with_the_event_id_as_message_id(
    database_url: str, nats_server: NatsServer
) -> None:
    async with trio.open_nursery() as nursery:
        running = await run_replica(nursery, database_url, CSMS_EXPORT_NATS_URL=nats_server.url)
        await drive(running, "CP-N1")
        await drive(running, "CP-N2")

        async def exported() -> bool:
            async with running.api() as client:
                sinks = (await client.get("/api/v1/exports")).json()["items"]
            return bool(sinks) and sinks[0]["lag_events"] == 0 and sinks[0]["exported"] > 0

        await wait_until(exported, timeout=60)
        messages: list[tuple[str, dict[str, str], bytes]] = []

        async def stream_is_outbox() -> bool:  # all, once each, in cursor order (late presence events included)
            nonlocal messages
            messages = await trio.to_thread.run_sync(nats_server.messages, "CSMS_EVENTS")
            return [h["Nats-Msg-Id"] for _, h, _ in messages] == await outbox_ids(database_url)

        await wait_until(stream_is_outbox, timeout=60)
        ids = await outbox_ids(database_url)
        subjects = {s for s, _, _ in messages}
        assert "csms.transaction.ended.v1.CP-N1" in subjects
        async with running.api() as client:
            sinks = (await client.get("/api/v1/exports")).json()["items"]
        assert sinks[0]["sink"] == "nats:CSMS_EVENTS" and sinks[0]["exported"] == len(ids)
        nursery.cancel_scope.cancel()


async def test_jetstream_drops_re_publishes_after_a_cursor_rewind(database_url: str, nats_server: NatsServer) -> None:
    """At-least-once + message ids: an exporter that resumes from an older cursor (a failover mid-batch)
    re-publishes, and the stream keeps one copy of each event."""
    async with trio.open_nursery() as nursery:
        running = await run_replica(nursery, database_url, CSMS_EXPORT_NATS_URL=nats_server.url)
        await drive(running, "CP-NR", sessions=2)
        ids = await outbox_ids(database_url)

        async def stream_has(n: int) -> bool:
            return len(await trio.to_thread.run_sync(nats_server.messages, "CSMS_EVENTS")) >= n

        await wait_until(partial(stream_has, len(ids)), timeout=60)
        nursery.cancel_scope.cancel()
    async with Database.open(database_url, pool_size=1) as db:
        await db.execute("UPDATE export_cursors SET txid = '0', seq = 0")  # as if the last ack never landed
    async with trio.open_nursery() as nursery:
        running = await run_replica(nursery, database_url, CSMS_EXPORT_NATS_URL=nats_server.url)

        async def caught_up() -> bool:
            async with running.api() as client:
                return bool((await client.get("/api/v1/exports")).json()["items"][0]["lag_events"] == 0)

        await wait_until(caught_up, timeout=60)
        nursery.cancel_scope.cancel()
    messages = await trio.to_thread.run_sync(nats_server.messages, "CSMS_EVENTS")
    assert [h["Nats-Msg-Id"] for _, h, _ in messages] == await outbox_ids(database_url)


async def test_webhook_retries_until_the_endpoint_takes_the_batch(database_url: str) -> None:
    with WebhookReceiver(SECRET) as receiver:
        receiver.failing = 2
        async with trio.open_nursery() as nursery:
            running = await run_replica(
                nursery, database_url, CSMS_EXPORT_WEBHOOK_URL=receiver.url, CSMS_EXPORT_WEBHOOK_SECRET=SECRET
            )
            await drive(running, "CP-W1", sessions=1)

            async def all_delivered() -> bool:
                return [e["id"] for e in receiver.events] == await outbox_ids(database_url)

            await wait_until(all_delivered)  # every event, once, in cursor order
            nursery.cancel_scope.cancel()
        assert receiver.requests >= 3 and receiver.bad_signatures == 0


async def test_webhook_dead_letters_after_its_attempts_and_replays_on_request(database_url: str) -> None:
    with WebhookReceiver(SECRET) as receiver:
        receiver.failing = -1
        async with trio.open_nursery() as nursery:
            running = await run_replica(
                nursery,
                database_url,
                CSMS_EXPORT_WEBHOOK_URL=receiver.url,
                CSMS_EXPORT_WEBHOOK_SECRET=SECRET,
                CSMS_EXPORT_WEBHOOK_ATTEMPTS="2",
            )
            await running.put_station("CP-DL")
            async with running.api() as client:

                async def dead_lettered() -> bool:
                    sinks = (await client.get("/api/v1/exports")).json()["items"]
                    return bool(sinks) and sinks[0]["dead_letters"] >= 1 and sinks[0]["lag_events"] == 0

                await wait_until(dead_lettered)
                letters = (await client.get("/api/v1/exports/webhook/dead-letters")).json()["items"]
                assert letters[0]["attempts"] == 2 and "503" in letters[0]["last_error"]
                assert letters[0]["event"]["type"] == "csms.station.registered.v1"
                receiver.failing = 0
                replay = await client.post(
                    "/api/v1/exports/webhook/dead-letters/replay", json={"ids": [letters[0]["id"]]}
                )
                assert replay.status_code == 200 and replay.json() == {"requested": 1}
                assert await trio.to_thread.run_sync(receiver.wait_for, lambda r: len(r.events) >= 1)
                assert receiver.events[0]["id"] == letters[0]["event_id"]

                async def replayed() -> bool:
                    page = (await client.get("/api/v1/exports/webhook/dead-letters")).json()["items"]
                    return page[0]["replayed_at"] is not None

                await wait_until(replayed)
                again = await client.post("/api/v1/exports/webhook/dead-letters/replay", json={})
                assert again.json() == {"requested": 0}  # nothing left waiting
                bad = await client.post("/api/v1/exports/webhook/dead-letters/replay", json={"ids": ["x"]})
                assert bad.status_code == 422
            nursery.cancel_scope.cancel()
