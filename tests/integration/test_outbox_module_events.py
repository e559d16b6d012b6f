"""The device model and sites modules' events: every committed change is one event that matches its schema,
a retried station message adds none, and a write refused by its fence leaves none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from csms.app import MIGRATIONS
from csms.sites import Held, SiteFences, SiteFenceSuperseded, SiteSpec, StationSpec
from csms.sites.store import Allocation, Round, SiteStore
from csms.storage import Database
from devcluster import station201
from devcluster.station import SimulatedStation
from devcluster.v201_calls import DeviceModelStation
from tests.integration.conftest import Running
from tests.integration.test_outbox_events import VALIDATORS, all_events

pytestmark = pytest.mark.integration


def checked(events: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The events of one module, each validated against its published schema."""
    mine = [e for e in events if e["type"].startswith(prefix)]
    for event in mine:
        VALIDATORS[event["type"]](event["data"])
    return mine


async def test_device_model_changes_emit_events(csms: Running, db: Database) -> None:
    model = DeviceModelStation()
    await csms.put_station("CP-DME")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-DME", subprotocols=["ocpp2.0.1"], answer=model.answer) as cp,
        csms.api() as api,
    ):
        await cp.call("BootNotification", station201.boot())
        base = "/api/v1/stations/CP-DME/commands"
        assert (
            await api.post(f"{base}/GetBaseReport", json={"requestId": 7, "reportBase": "FullInventory"})
        ).is_success
        parts = list(model.parts(7, per_part=2))
        for part in (parts[0], parts[0], *parts[1:]):  # one part retried: stored once, one event
            assert await cp.call("NotifyReport", part) == {}
        data = [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}, "attributeValue": "90"}
        ]
        assert (await api.post(f"{base}/SetVariables", json={"setVariableData": data})).is_success
        get = {"getVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}
        assert (await api.post(f"{base}/GetVariables", json=get)).is_success
        events = checked(await all_events(api, station_id="CP-DME"), "csms.device_model.")
    received = [e["data"] for e in events if e["type"] == "csms.device_model.report_received.v1"]
    assert [(r["request_id"], r["seq_no"], r["tbc"]) for r in received] == [(7, p["seqNo"], p["tbc"]) for p in parts]
    assert sum(r["variables"] for r in received) == await db.fetchval(
        "SELECT variables FROM device_model_reports WHERE station_id = 'CP-DME' AND request_id = 7"
    )
    updated = [e["data"] for e in events if e["type"] == "csms.device_model.variables_updated.v1"]
    assert [(u["source"], [(v["variable"], v["value"]) for v in u["variables"]]) for u in updated] == [
        ("SetVariables", [("HeartbeatInterval", "90")]),
        ("GetVariables", [("HeartbeatInterval", "90")]),
    ]


async def test_site_changes_emit_events_and_a_stale_fence_none(database_url: str) -> None:
    async with Database.open(database_url, pool_size=2) as db:
        await db.migrate(MIGRATIONS)
        store, fences = SiteStore(db), SiteFences(db)
        spec = SiteSpec("depot", limit=40, unit="A", stations=(StationSpec("S-1"), StationSpec("S-2")))
        assert await store.put(spec) is True
        until = datetime.now(UTC) + timedelta(minutes=5)
        assert await store.set_override("depot", 20, until) is True
        assert await store.set_override("nowhere", 20, until) is False  # nothing changed: no event
        fence = await fences.take("depot", "node-a")
        await store.save("depot", fence, [Allocation("S-1", Held(default_limit=10), connector_id=1)])
        now = datetime.now(UTC)
        await store.save_round("depot", fence, Round("node-a", now, 20, 10, 3.5, 1, 0, None))
        await store.forget("depot", fence, ["S-2"])
        await fences.take("depot", "node-b")  # the site moved: the old holder's writes are refused
        with pytest.raises(SiteFenceSuperseded):
            await store.save("depot", fence, [Allocation("S-1", Held(default_limit=40))])
        rows = await db.fetch("SELECT type, payload FROM outbox WHERE aggregatetype = 'site' ORDER BY txid, seq")
    events = checked([{"type": r["type"], "data": r["payload"]} for r in rows], "csms.site.")
    assert [e["type"].removeprefix("csms.site.") for e in events] == [
        "defined.v1",
        "limit_overridden.v1",
        "allocations_changed.v1",
        "round_computed.v1",
        "allocations_changed.v1",
    ]
    defined, overridden, saved, computed, forgotten = (e["data"] for e in events)
    assert defined["created"] is True and defined["station_ids"] == ["S-1", "S-2"] and defined["limit"] == 40
    assert overridden["limit"] == 20 and datetime.fromisoformat(overridden["until"]) == until
    assert saved["fence_token"] == fence and saved["allocations"][0]["default_limit"] == 10
    assert computed["measured"] == 3.5 and computed["computed_by"] == "node-a"
    assert forgotten["removed_station_ids"] == ["S-2"] and forgotten["allocations"] == []
