"""OCPP 2.0.1 commands across the cluster: a 2.0.1 station pinned to replica-1, the operator on replica-2.

Every CSMS-initiated 2.0.1 operation is validated for the station's version on the replica that took the
request, routed to the owner, sent there and audited; the device model a report fills on the owner (its
NotifyReport parts) and the SetVariables answer recorded by the API replica meet in Postgres.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from replica_cluster import open_cluster

from devcluster import station201
from devcluster.station import SimulatedStation
from devcluster.v201_calls import REQUESTS, DeviceModelStation

pytestmark = pytest.mark.cluster


async def test_every_v201_operation_is_routed_to_the_owner(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    model = DeviceModelStation()
    async with open_cluster(database_url, etcd_url, prefix, tmp_path) as cluster:
        owner, other = cluster.nodes[0], cluster.nodes[1]
        async with (
            SimulatedStation.connect(owner.ocpp_url, "CP-201", subprotocols=["ocpp2.0.1"], answer=model.answer) as cp,
            cluster.api(other, timeout=30) as api,
        ):
            await cp.call("BootNotification", station201.boot())
            await cluster.wait_owned("CP-201")
            assert await cluster.owner("CP-201") == owner.node_id
            for action, payload in REQUESTS.items():
                response = await api.post(f"/api/v1/stations/CP-201/commands/{action}", json=payload)
                assert response.status_code == 200, (action, response.text)
                record = response.json()
                assert record["status"] == "completed" and record["executed_by"] == owner.node_id, (action, record)
                assert record["protocol"] == "ocpp2.0.1"
                assert (action, payload) in cp.received_calls, action
            wrong_version = await api.post("/api/v1/stations/CP-201/commands/ChangeConfiguration", json={})
            assert wrong_version.status_code == 422 and "OCPP 2.0.1" in wrong_version.json()["error"]["message"]

            # The report's parts land on the owner; the API replica shows them, tied to its request.
            asked = await api.post(
                "/api/v1/stations/CP-201/commands/GetBaseReport", json={"requestId": 100, "reportBase": "FullInventory"}
            )
            assert asked.status_code == 200, asked.text
            for part in model.parts(100, per_part=4):
                await cp.call("NotifyReport", part)
            reports = (await api.get("/api/v1/stations/CP-201/reports")).json()["items"]
            [tied] = [r for r in reports if r["request_id"] == 100]
            assert tied["complete"] is True and tied["command_id"] == asked.json()["id"]
            page = (await api.get("/api/v1/stations/CP-201/variables", params={"variable": "HeartbeatInterval"})).json()
            [heartbeat] = page["items"]
            # SetVariables from REQUESTS above (before the report) set 120; the report then says what the station has.
            assert (
                heartbeat["attributes"][0]["value"] == "120" and heartbeat["attributes"][0]["source"] == "NotifyReport"
            )
