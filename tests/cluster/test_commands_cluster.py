"""Operator commands across the cluster: the API replica is never the owner, so every command is routed.

A station is pinned to replica-1 (connected to its port directly); the operator talks to replica-2. Each of
the OCPP 1.6 CSMS-initiated operations goes through, and so do the station's other answers: Rejected, a
CallError, silence. Then the hard cases: the station moves while a command is in flight, and it is offline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from replica_cluster import ReplicaCluster, open_cluster

from devcluster.station import SimulatedStation, StationCallError, accept_everything

pytestmark = pytest.mark.cluster

SOON = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
PROFILE = {
    "chargingProfileId": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Relative",
    "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400}]},
}
# Every CSMS-initiated OCPP 1.6 operation with a valid request, and what the simulated station answers.
OPERATIONS: dict[str, dict[str, Any]] = {
    "RemoteStartTransaction": {"idTag": "TAG-1", "connectorId": 1},
    "RemoteStopTransaction": {"transactionId": 1},
    "Reset": {"type": "Soft"},
    "UnlockConnector": {"connectorId": 1},
    "ChangeAvailability": {"connectorId": 0, "type": "Inoperative"},
    "ChangeConfiguration": {"key": "HeartbeatInterval", "value": "120"},
    "GetConfiguration": {"key": ["HeartbeatInterval"]},
    "ClearCache": {},
    "TriggerMessage": {"requestedMessage": "StatusNotification", "connectorId": 1},
    "DataTransfer": {"vendorId": "com.example", "messageId": "hello", "data": "{}"},
    "GetDiagnostics": {"location": "ftp://diagnostics.example/"},
    "UpdateFirmware": {"location": "https://firmware.example/2.0.bin", "retrieveDate": SOON},
    "ReserveNow": {"connectorId": 1, "expiryDate": SOON, "idTag": "TAG-1", "reservationId": 7},
    "CancelReservation": {"reservationId": 7},
    "SendLocalList": {"listVersion": 3, "updateType": "Full", "localAuthorizationList": []},
    "GetLocalListVersion": {},
    "SetChargingProfile": {"connectorId": 1, "csChargingProfiles": PROFILE},
    "ClearChargingProfile": {"id": 1},
    "GetCompositeSchedule": {"connectorId": 1, "duration": 600},
}


async def spec_station(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Answers per the spec, with a few scripted refusals keyed on the payload."""
    if action == "Reset" and payload["type"] == "Hard":
        return {"status": "Rejected"}
    if action == "DataTransfer" and payload.get("messageId") == "explode":
        raise StationCallError("NotSupported", "no such vendor extension")
    if action == "DataTransfer" and payload.get("messageId") == "silence":
        await trio.sleep(3600)
    return await accept_everything(action, payload)


@asynccontextmanager
async def pinned_station(
    cluster: ReplicaCluster, node_index: int, station_id: str, answer: Any = spec_station
) -> AsyncIterator[SimulatedStation]:
    node = cluster.nodes[node_index]
    async with SimulatedStation.connect(node.ocpp_url, station_id, answer=answer) as station:
        await cluster.wait_owned(station_id)
        assert await cluster.owner(station_id) == node.node_id
        yield station


def other_api(cluster: ReplicaCluster, owner_index: int) -> httpx.AsyncClient:
    return cluster.api(cluster.nodes[(owner_index + 1) % len(cluster.nodes)], timeout=30)


async def test_every_operation_is_routed_to_the_owner(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    async with (
        open_cluster(database_url, etcd_url, prefix, tmp_path) as cluster,
        pinned_station(cluster, 0, "CP-CMD") as station,
        other_api(cluster, 0) as api,
    ):
        for action, payload in OPERATIONS.items():
            response = await api.post(f"/api/v1/stations/CP-CMD/commands/{action}", json=payload)
            assert response.status_code == 200, (action, response.text)
            record = response.json()
            assert record["status"] == "completed", (action, record)
            assert record["executed_by"] == "replica-1", action
            assert (action, payload) in station.received_calls, action

        rejected = await api.post("/api/v1/stations/CP-CMD/commands/Reset", json={"type": "Hard"})
        assert rejected.status_code == 200 and rejected.json()["result"] == {"status": "Rejected"}
        error = await api.post(
            "/api/v1/stations/CP-CMD/commands/DataTransfer", json={"vendorId": "v", "messageId": "explode"}
        )
        assert error.status_code == 502 and error.json()["error"]["code"] == "NotSupported"
        silence = await api.post(
            "/api/v1/stations/CP-CMD/commands/DataTransfer",
            json={"vendorId": "v", "messageId": "silence"},
            params={"timeout": "1"},
        )
        assert silence.status_code == 504 and silence.json()["status"] == "timeout"

        audit = (await api.get("/api/v1/commands", params={"station_id": "CP-CMD", "limit": 100})).json()["items"]
        assert len(audit) == len(OPERATIONS) + 3
        assert {c["executed_by"] for c in audit} == {"replica-1"}
        # The domain behind the operations saw them too, whichever replica recorded the answer.
        state = (await api.get("/api/v1/stations/CP-CMD/operations")).json()
        assert state["local_list"]["sent_version"] == 3
        assert [j["kind"] for j in state["jobs"]] == ["firmware", "diagnostics"]


async def test_async_command_and_offline_station(database_url: str, etcd_url: str, prefix: str, tmp_path: Path) -> None:
    async with open_cluster(database_url, etcd_url, prefix, tmp_path) as cluster, other_api(cluster, 0) as api:
        async with pinned_station(cluster, 0, "CP-ASYNC"):
            accepted = await api.post(
                "/api/v1/stations/CP-ASYNC/commands/ClearCache", json={}, params={"async": "true"}
            )
            assert accepted.status_code == 202
            command_id = accepted.json()["id"]
            with trio.fail_after(10):
                while (await api.get(f"/api/v1/commands/{command_id}")).json()["status"] == "pending":
                    await trio.sleep(0.05)
            assert (await api.get(f"/api/v1/commands/{command_id}")).json()["executed_by"] == "replica-1"
        with trio.fail_after(10):
            while await cluster.owner("CP-ASYNC") is not None:
                await trio.sleep(0.05)
        offline = await api.post("/api/v1/stations/CP-ASYNC/commands/ClearCache", json={})
        assert offline.status_code == 409, offline.text
        assert offline.json()["status"] == "offline"


@pytest.mark.parametrize(
    ("action", "payload", "expected_status", "expected_http"),
    [
        ("GetConfiguration", {}, "completed", 200),  # idempotent: retried once on the new owner
        ("Reset", {"type": "Soft"}, "unknown_outcome", 503),  # not idempotent: reported, never repeated
    ],
)
async def test_ownership_moves_during_a_command(
    database_url: str,
    etcd_url: str,
    prefix: str,
    tmp_path: Path,
    action: str,
    payload: dict[str, Any],
    expected_status: str,
    expected_http: int,
) -> None:
    """The station reconnects to replica-3 while replica-1 waits for its answer to a routed command."""
    answering = trio.Event()
    result: dict[str, Any] = {}
    station_id = f"CP-MOVE-{action}"

    async def slow_station(called: str, called_payload: dict[str, Any]) -> dict[str, Any]:
        if called == action:
            answering.set()
            await trio.sleep(3600)  # never answers on this connection: it is about to be replaced
        return await accept_everything(called, called_payload)

    async def send(api: httpx.AsyncClient) -> None:
        response = await api.post(f"/api/v1/stations/{station_id}/commands/{action}", json=payload)
        result["http"], result["body"] = response.status_code, response.json()

    # A roomy call timeout: the move must be what ends the call, never the clock on a busy CI machine.
    async with (
        open_cluster(database_url, etcd_url, prefix, tmp_path, env={"CSMS_CALL_TIMEOUT": "20"}) as cluster,
        other_api(cluster, 0) as api,
        pinned_station(cluster, 0, station_id, answer=slow_station),
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(send, api)
        with trio.fail_after(10):
            await answering.wait()
        # The newest connection wins: the station shows up on replica-3, replica-1 drops the old one.
        async with SimulatedStation.connect(cluster.nodes[2].ocpp_url, station_id):
            with trio.fail_after(30):
                while "http" not in result:
                    await trio.sleep(0.05)
        # Checked inside the cluster block so a failure prints the replicas' logs.
        assert result["http"] == expected_http, result
        body = result["body"]
        assert body["status"] == expected_status, body
        if expected_status == "completed":
            assert body["executed_by"] == "replica-3" and body["attempts"] >= 2
        else:
            assert body["error"]["code"] == "OwnershipMoved"
