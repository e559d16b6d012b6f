"""Sites on one replica: the API contract, and allocations that move without the held limits ever summing above
the site's limit (stations simulated with the profiles they hold)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import httpx
import pytest
import trio

from csms.sites import Held, SiteFences, SiteFenceSuperseded
from csms.sites.profiles import failsafe_profile
from csms.sites.store import Allocation, SiteStore
from csms.storage import Database
from devcluster.charging import ChargingStation
from tests.integration.conftest import TOKEN, Running
from tests.integration.test_console import sign_in

pytestmark = pytest.mark.integration

SECRET = "s3cret-for-site-tests"
FAST = {
    "CSMS_SITE_INTERVAL": "0.5",
    "CSMS_REGISTRATION": "auto",
    "CSMS_CALL_TIMEOUT": "3",
    "CSMS_INTERNAL_SECRET": SECRET,
}


@pytest.fixture
def replica_overrides() -> dict[str, str]:
    return FAST


class Watch:
    """The highest sum of limits in force the stations ever held together (checked at every change)."""

    def __init__(self, stations: Sequence[ChargingStation]) -> None:
        self.stations = stations
        self.highest = 0.0
        for station in stations:
            station.on_change = self.check

    def total(self) -> float:
        return sum(s.station_limit() for s in self.stations)

    def check(self) -> None:
        self.highest = max(self.highest, self.total())


@asynccontextmanager
async def connected(running: Running, stations: Sequence[ChargingStation]) -> AsyncIterator[None]:
    async with trio.open_nursery() as nursery:
        for station in stations:
            await nursery.start(station.run, running.ocpp_url)
        yield
        nursery.cancel_scope.cancel()


async def until(predicate: Callable[[], bool], within: float = 30.0) -> None:
    with trio.fail_after(within):
        while not predicate():
            await trio.sleep(0.02)


async def test_site_api_contract(csms: Running) -> None:
    async with csms.api() as api:
        created = await api.put("/api/v1/sites/api-depot", json={"limit": 32, "unit": "A", "stations": ["API-1"]})
        assert created.status_code == 201, created.text
        assert created.json()["stations"][0]["id"] == "API-1"
        updated = await api.put(
            "/api/v1/sites/api-depot",
            json={"limit": 40, "stations": [{"id": "API-1", "max_current": 16, "priority": 2}, "API-2"]},
        )
        assert updated.status_code == 200 and updated.json()["limit"] == 40
        clash = await api.put("/api/v1/sites/api-other", json={"limit": 10, "stations": ["API-2"]})
        assert clash.status_code == 409 and clash.json()["error"]["details"]["site_id"] == "api-depot"
        bad = await api.put("/api/v1/sites/api-depot", json={"limit": "lots", "stations": ["API-1"]})
        assert bad.status_code == 422 and bad.json()["error"]["message"].startswith("limit: "), bad.text
        override = await api.put("/api/v1/sites/api-depot/limit", json={"limit": 20, "duration": 600})
        assert override.status_code == 200 and override.json()["override"]["limit"] == 20
        assert (await api.put("/api/v1/sites/api-depot/limit", json={"limit": 20})).status_code == 422
        assert (await api.put("/api/v1/sites/nowhere/limit", json={"limit": 1, "duration": 5})).status_code == 404
        assert (await api.get("/api/v1/sites/nowhere")).status_code == 404
        view = (await api.get("/api/v1/sites/api-depot")).json()
        assert view["limit"] == 40 and [s["id"] for s in view["stations"]] == ["API-1", "API-2"]


async def test_budget_moves_between_stations_without_going_over(csms: Running) -> None:
    a, b, c = (ChargingStation(f"SITE-{n}") for n in "ABC")
    watch = Watch([a, b, c])
    async with connected(csms, [a, b, c]), csms.api() as api:
        response = await api.put(
            "/api/v1/sites/two-bays", json={"limit": 40, "stations": ["SITE-A", "SITE-B", "SITE-C"]}
        )
        assert response.status_code == 201
        # Every station gets its failsafe: an even split of the limit while nobody charges.
        await until(lambda: all(s.limit_in_force() == pytest.approx(13.3) for s in (a, b, c)))
        watch.highest = watch.total()
        await a.start_session(32)
        await until(lambda: a.limit_in_force() == 32 and b.limit_in_force() == 4 and c.limit_in_force() == 4)
        await b.start_session(32)
        await until(lambda: (a.limit_in_force(), b.limit_in_force(), c.limit_in_force()) == (20, 20, 0))
        await a.stop_session()
        await until(lambda: b.limit_in_force() == 32 and a.limit_in_force() == 4 and c.limit_in_force() == 4)
        assert watch.highest <= 40 + 1e-6, watch.highest
        with trio.fail_after(10):  # the station holds it before the round records its answer
            while (view := (await api.get("/api/v1/sites/two-bays")).json())["round"]["charging"] != 1:
                await trio.sleep(0.05)
        b_view = next(s for s in view["stations"] if s["id"] == "SITE-B")
        assert b_view["allocation"] == 32 and b_view["stuck"] is False
        assert view["round"]["allocated"] <= 40


async def test_a_two_connector_station_stays_within_its_failsafe_with_every_connector_in_use(
    csms: Running,
) -> None:
    """The failsafe bounds the whole station (ChargePointMaxProfile), not each connector: a station with two
    connectors that loses the CSMS and gets a second car draws no more than it is counted at."""
    double, single = ChargingStation("SITE-2C", connectors=2), ChargingStation("SITE-1C")
    watch = Watch([double, single])
    async with connected(csms, [double, single]), csms.api() as api:
        await api.put("/api/v1/sites/mixed", json={"limit": 40, "stations": ["SITE-2C", "SITE-1C"]})
        await until(lambda: double.limit_in_force() == 20 and single.limit_in_force() == 20)
        watch.highest = watch.total()
        await double.start_session(32)
        await until(lambda: double.limit_in_force() == 32 and single.limit_in_force() == 8)
        assert watch.highest <= 40 + 1e-6, watch.highest
        await double.stop_session()
        await until(lambda: double.limit_in_force() == 20 and single.limit_in_force() == 20)
        assert watch.highest <= 40 + 1e-6, watch.highest


async def test_a_station_charging_two_cars_gets_a_share_for_each(csms: Running) -> None:
    """Shares go per charging EVSE: a second car on a two-connector station takes a share of its own (a TxProfile
    on its connector), the station's cap is the sum of its shares, and the site never goes over."""
    double, single = ChargingStation("SITE-2E", connectors=2), ChargingStation("SITE-1E")
    watch = Watch([double, single])
    async with connected(csms, [double, single]), csms.api() as api:
        await api.put("/api/v1/sites/two-cars", json={"limit": 48, "stations": ["SITE-2E", "SITE-1E"]})
        await until(lambda: double.limit_in_force() == 24 and single.limit_in_force() == 24)
        watch.highest = watch.total()
        await double.start_session(32)
        await single.start_session(32)
        await until(lambda: double.limit_in_force() == 24 and single.limit_in_force() == 24)
        await double.start_other(2)
        shares = (16, 16, 32, 16)  # each EVSE its TxProfile, the station a cap of both
        await until(
            lambda: (
                (double.connector_limit(1), double.connector_limit(2), double.station_limit(), single.limit_in_force())
                == shares
            )
        )
        assert watch.highest <= 48 + 1e-6, watch.highest


async def test_a_station_rejecting_profiles_is_counted_at_its_max(csms: Running) -> None:
    refuser = ChargingStation("SITE-NO", max_current=16, accepts_profiles=False)
    good = ChargingStation("SITE-OK")
    watch = Watch([refuser, good])
    async with connected(csms, [refuser, good]), csms.api() as api:
        await api.put(
            "/api/v1/sites/stubborn", json={"limit": 40, "stations": [{"id": "SITE-NO", "max_current": 16}, "SITE-OK"]}
        )
        await until(lambda: good.limit_in_force() == 20)  # idle: its failsafe, an even split of the limit
        await refuser.start_session(16)
        await good.start_session(32)
        await until(lambda: good.limit_in_force() == 24)
        assert watch.highest <= 40 + 1e-6
        view = (await api.get("/api/v1/sites/stubborn")).json()
        assert next(s for s in view["stations"] if s["id"] == "SITE-NO")["stuck"] is True
    # The console's site page shows the same.
    async with httpx.AsyncClient(base_url=csms.api_url, timeout=10) as http:
        await sign_in(http, TOKEN)
        page = await http.get("/ui/sites/stubborn")
        assert page.status_code == 200 and "stuck: counted at max" in page.text
        assert 'href="/ui/sites/stubborn"' in (await http.get("/ui/sites")).text
        assert (await http.get("/ui/sites/nowhere")).status_code == 404


async def test_a_replica_that_lost_the_site_can_neither_raise_a_station_nor_write(csms: Running) -> None:
    """The computing replica is paused past its lease, another takes the site (a newer token in Postgres), then
    the paused one resumes mid-round: the raise it sends under its old token is refused by the station's owner
    (nothing reaches the station, the limit holds) and its site-state writes are refused too."""
    a, b = ChargingStation("FENCE-A"), ChargingStation("FENCE-B")
    watch = Watch([a, b])
    async with connected(csms, [a, b]), csms.api() as api, Database.open(csms.database_url, pool_size=1) as db:
        created = await api.put("/api/v1/sites/fenced", json={"limit": 20, "stations": ["FENCE-A", "FENCE-B"]})
        assert created.status_code == 201
        await until(lambda: a.limit_in_force() == 10 and b.limit_in_force() == 10)
        watch.highest = watch.total()
        stale = await db.fetchval("SELECT fence FROM site_fences WHERE site_id = 'fenced'")
        assert await SiteFences(db).take("fenced", "new-holder") == stale + 1  # the site moved
        action, raised = failsafe_profile("ocpp1.6", 20, 3)  # the stale round's raise: over the limit now
        command = {"command_id": 1, "station_id": "FENCE-A", "action": action, "payload": raised, "timeout": 3}
        response = await api.post(
            "/internal/v1/commands/execute",
            json={**command, "guard": {"key": "site:fenced", "token": stale}},
            headers={"X-CSMS-Internal-Secret": SECRET},
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "superseded", response.json()
        assert response.json()["error"]["code"] == "FenceSuperseded"
        assert a.limit_in_force() == 10 and watch.highest <= 20 + 1e-6, (a.limit_in_force(), watch.highest)
        with pytest.raises(SiteFenceSuperseded):
            await SiteStore(db).save("fenced", stale, [Allocation("FENCE-A", Held(default_limit=20))])
        # The replica, refused in turn, takes the site back under a newer token and keeps the limit. If the
        # takeover refused the first round's last write, the new round starts from stations it must count at
        # their max: it lowers them before it raises them back, so the view settles rather than holds at once.
        with trio.fail_after(10):
            while await db.fetchval("SELECT fence FROM site_fences WHERE site_id = 'fenced'") <= stale + 1:
                await trio.sleep(0.05)

            async def failsafe_of_a() -> float | None:
                view = (await api.get("/api/v1/sites/fenced")).json()
                return next(s for s in view["stations"] if s["id"] == "FENCE-A")["failsafe"]

            while await failsafe_of_a() != 10:
                await trio.sleep(0.05)
        assert watch.highest <= 20 + 1e-6, watch.highest


async def test_a_rounds_profiles_go_to_the_owner_as_one_batch_each_send_fenced(csms: Running) -> None:
    """The owner's batch endpoint: one request carrying many SetChargingProfile, sent concurrently while the
    site's token is current; under a superseded token none is sent; an oversized batch is a readable 400."""
    a, b = ChargingStation("BATCH-A"), ChargingStation("BATCH-B")
    headers = {"X-CSMS-Internal-Secret": SECRET}
    async with connected(csms, [a, b]), csms.api() as api, Database.open(csms.database_url, pool_size=1) as db:
        created = await api.put("/api/v1/sites/batched", json={"limit": 20, "stations": ["BATCH-A", "BATCH-B"]})
        assert created.status_code == 201
        await until(lambda: a.limit_in_force() == 10 and b.limit_in_force() == 10)
        token = await db.fetchval("SELECT fence FROM site_fences WHERE site_id = 'batched'")
        action, lowered = failsafe_profile("ocpp1.6", 8, 3)

        def batch(guard_token: int, payload: dict[str, object], count: int = 2) -> dict[str, object]:
            guard = {"key": "site:batched", "token": guard_token}
            command = {"action": action, "payload": payload, "timeout": 3, "guard": guard}
            stations = ["BATCH-A", "BATCH-B"] * count
            return {"commands": [{**command, "command_id": n, "station_id": stations[n]} for n in range(count)]}

        answer = await api.post("/internal/v1/commands/execute-batch", json=batch(token, lowered), headers=headers)
        assert answer.status_code == 200, answer.text
        assert [r["status"] for r in answer.json()["results"]] == ["completed", "completed"], answer.json()
        assert a.limit_in_force() == 8 and b.limit_in_force() == 8

        assert await SiteFences(db).take("batched", "new-holder") == token + 1  # the site moved
        _, raised = failsafe_profile("ocpp1.6", 20, 3)
        answer = await api.post("/internal/v1/commands/execute-batch", json=batch(token, raised), headers=headers)
        assert [r["status"] for r in answer.json()["results"]] == ["superseded", "superseded"], answer.json()
        assert a.limit_in_force() <= 10 and b.limit_in_force() <= 10  # the stale raises never reached them

        too_many = batch(token, lowered, 65)
        oversized = await api.post("/internal/v1/commands/execute-batch", json=too_many, headers=headers)
        assert oversized.status_code == 400 and "1-64" in oversized.text, oversized.text
