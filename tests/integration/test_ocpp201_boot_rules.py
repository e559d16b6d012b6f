"""OCPP 2.0.1 boot rules (B02/B03): until its boot is Accepted a station may only send what the spec allows;
anything else gets SecurityError. A station back without booting is judged by its last boot on record."""

from __future__ import annotations

import pytest

from devcluster import station201 as v201
from devcluster.station import CallErrorReply, SimulatedStation
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration


async def refused(cp: SimulatedStation, action: str, payload: dict[str, object]) -> str:
    with pytest.raises(CallErrorReply) as error:
        await cp.call(action, payload)
    return error.value.code


async def test_pending_allows_boot_and_reports_only_and_rejected_allows_boot_only(csms: Running) -> None:
    await csms.put_station("CP-PEND", boot_status="Pending")
    await csms.put_station("CP-REJ", boot_status="Rejected")
    report = {"requestId": 1, "generatedAt": "2030-01-01T00:00:00Z", "seqNo": 0}
    async with SimulatedStation.connect(csms.ocpp_url, "CP-PEND", subprotocols=v201.SUBPROTOCOL_201) as cp:
        assert await refused(cp, "Heartbeat", {}) == "SecurityError"  # never booted
        assert (await cp.call("BootNotification", v201.boot()))["status"] == "Pending"
        assert await cp.call("NotifyReport", report) == {}  # the reports a configuring CSMS asks for
        assert await refused(cp, "Heartbeat", {}) == "SecurityError"
        assert await refused(cp, "StatusNotification", v201.status(1, 1, "Available")) == "SecurityError"
        event = v201.transaction_event("Started", "TX-P", 0, wh=1)
        assert await refused(cp, "TransactionEvent", event) == "SecurityError"
    async with SimulatedStation.connect(csms.ocpp_url, "CP-REJ", subprotocols=v201.SUBPROTOCOL_201) as cp:
        assert (await cp.call("BootNotification", v201.boot()))["status"] == "Rejected"
        assert await refused(cp, "NotifyReport", report) == "SecurityError"
        assert await refused(cp, "Heartbeat", {}) == "SecurityError"

    # The operator accepts it: the next boot is Accepted and everything is allowed, on this connection and on
    # the next one, which does not boot again (a reconnect or a failover): judged by the boot on record.
    await csms.put_station("CP-PEND", boot_status="Accepted")
    async with SimulatedStation.connect(csms.ocpp_url, "CP-PEND", subprotocols=v201.SUBPROTOCOL_201) as cp:
        assert await refused(cp, "Heartbeat", {}) == "SecurityError"  # its last boot on record is still Pending
        assert (await cp.call("BootNotification", v201.boot()))["status"] == "Accepted"
        assert "currentTime" in await cp.call("Heartbeat", {})
    async with SimulatedStation.connect(csms.ocpp_url, "CP-PEND", subprotocols=v201.SUBPROTOCOL_201) as cp:
        assert "currentTime" in await cp.call("Heartbeat", {})
        assert await cp.call("StatusNotification", v201.status(1, 1, "Available")) == {}
    async with csms.api() as api:
        assert (await api.get("/api/v1/transactions", params={"station_id": "CP-PEND"})).json()["items"] == []
