"""The three token roles: `operator` may send commands and change stations and id tags (everything the REST
API changes: nothing there is admin-only), `read` may only look; neither reaches the replicas' internal API."""

from __future__ import annotations

import pytest

from devcluster.station import SimulatedStation
from tests.integration.conftest import READ_TOKEN, TOKEN, Running

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize(
        "replica_overrides",
        [
            {
                "CSMS_API_TOKENS": f"{TOKEN},{READ_TOKEN}:read,op-token:operator:alice",
                "CSMS_INTERNAL_SECRET": "internal-s3cret",
            }
        ],
    ),
]


async def test_operator_changes_things_and_read_only_looks(csms: Running) -> None:
    await csms.put_station("CP-ROLE")
    async with (
        SimulatedStation.connect(csms.ocpp_url, "CP-ROLE") as cp,
        csms.api("op-token") as operator,
        csms.api(READ_TOKEN) as reader,
    ):
        started = await cp.start_transaction(1, "TAG-R", 0)
        changes = [
            ("post", "/api/v1/stations/CP-ROLE/commands/ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}),
            ("put", "/api/v1/id-tags/TAG-OP", {"status": "Accepted"}),
            ("put", "/api/v1/stations/CP-OP", {"description": "added by an operator"}),
            ("post", f"/api/v1/transactions/{started['transactionId']}/close", {"reason": "stuck"}),
            ("delete", "/api/v1/id-tags/TAG-OP", None),
        ]
        for method, path, body in changes:
            kwargs = {"json": body} if body is not None else {}
            denied = await getattr(reader, method)(path, **kwargs)
            assert denied.status_code == 403, (path, denied.text)
            assert "needs operator" in denied.json()["error"]["message"]
            allowed = await getattr(operator, method)(path, **kwargs)
            assert allowed.status_code in (200, 201, 204), (path, allowed.text)
        assert ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}) in cp.received_calls
        audit = (await reader.get("/api/v1/commands", params={"station_id": "CP-ROLE"})).json()["items"]
        # The audit names who: the operator token's name, and the role it held.
        assert [(c["requested_by"], c["requested_role"]) for c in audit] == [("token:alice", "operator")]
        for path in ("/api/v1/stations/CP-OP", "/api/v1/id-tags", f"/api/v1/transactions/{started['transactionId']}"):
            assert (await reader.get(path)).status_code == 200, path
        # Bearer tokens of any role are not the replicas' internal secret.
        for client in (operator, reader):
            assert (await client.post("/internal/v1/shed", json={"count": 1})).status_code in (401, 403)
