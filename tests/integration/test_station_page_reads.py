"""The station page's reads, each one statement: the shape and UTC timestamps of the multi-query reads they replaced."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from csms import operations, stations
from csms.storage import Database

pytestmark = pytest.mark.integration

AT = datetime(2030, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)


async def test_station_and_its_operations_state_read_as_before_on_a_server_not_in_utc(database_url: str) -> None:
    async with Database.open(database_url, pool_size=2) as db:
        await db.migrate([("stations", stations.MIGRATIONS), ("operations", operations.MIGRATIONS)])
        await db.execute(f"ALTER DATABASE {database_url.rsplit('/', 1)[1]} SET timezone TO 'America/New_York'")
    async with Database.open(database_url, pool_size=2) as db:  # new connections: New York time
        assert await db.fetchval("SHOW timezone") == "America/New_York"
        await db.execute("INSERT INTO stations (id, vendor) VALUES ('S', 'V')")
        for evse, connector, status in ((2, 1, "Charging"), (0, 2, "Faulted"), (1, 1, "Available")):
            await db.execute(
                "INSERT INTO connector_status (station_id, evse_id, connector_id, status, error_code, received_at)"
                " VALUES ('S', $1, $2, $3, 'NoError', $4)",
                evse,
                connector,
                status,
                AT,
            )
        await db.execute(
            "INSERT INTO charging_profiles (station_id, charging_profile_id, connector_id, stack_level, purpose,"
            " kind, profile, installed_at) VALUES ('S', 5, 1, 0, 'TxDefaultProfile', 'Relative', $1, $2)",
            {"chargingProfileId": 5},
            AT,
        )
        for key in ("b", "a"):
            await db.execute(
                "INSERT INTO station_configuration (station_id, key, value, readonly, known, reported_at)"
                " VALUES ('S', $1, '1', false, true, $2)",
                key,
                AT,
            )

        station = await stations.StationRegistry(db).get("S")
        state = await operations.OperationsViews(db).station_state("S")

    assert station is not None and station["vendor"] == "V"
    assert [(c["evse_id"], c["connector_id"], c["status"]) for c in station["connectors"]] == [
        (1, 1, "Available"),
        (2, 1, "Charging"),
        (None, 2, "Faulted"),  # EVSE 0 (a 1.6 connector) reads as no EVSE, last
    ]
    assert [c["charging"] for c in station["connectors"]] == [False, True, False]
    assert {c["received_at"] for c in station["connectors"]} == {AT.isoformat()}
    [profile] = state["charging_profiles"]
    assert profile["profile"] == {"chargingProfileId": 5} and profile["installed_at"] == AT.isoformat()
    assert [k["key"] for k in state["configuration"]] == ["a", "b"]
    assert state["configuration"][0]["reported_at"] == AT.isoformat()
    assert state["local_list"] is None and state["jobs"] == [] and state["remote_starts"] == []
