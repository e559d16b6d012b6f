"""Nothing station-to-CSMS in OCPP 2.0.1 silently lacks a handler or a test.

Every action in the `ocpp` package's 2.0.1 schemas is classified here (the spec's CSMS-initiated operations
are listed; the rest go station-to-CSMS), every station-to-CSMS action has a handler in the 2.0.1 adapter, and
the table below names a test that sends it: that test's body (or a module-level table it uses) must name the
action. A new action in a package upgrade, a handler removed, or a test renamed fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, cast

import pytest

from csms.central_system.v16 import CentralSystemSettings
from csms.central_system.v201 import CentralSystem201
from csms.ocpp import Validator
from csms.ocpp.schemas import load_schemas

ROOT = Path(__file__).resolve().parents[2]

# OCPP 2.0.1 part 2: the operations the CSMS initiates (DataTransfer goes both ways).
CSMS_INITIATED = {
    "CancelReservation", "CertificateSigned", "ChangeAvailability", "ClearCache", "ClearChargingProfile",
    "ClearDisplayMessage", "ClearVariableMonitoring", "CostUpdated", "CustomerInformation", "DataTransfer",
    "DeleteCertificate", "GetBaseReport", "GetChargingProfiles", "GetCompositeSchedule", "GetDisplayMessages",
    "GetInstalledCertificateIds", "GetLocalListVersion", "GetLog", "GetMonitoringReport", "GetReport",
    "GetTransactionStatus", "GetVariables", "InstallCertificate", "PublishFirmware", "RequestStartTransaction",
    "RequestStopTransaction", "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile", "SetDisplayMessage",
    "SetMonitoringBase", "SetMonitoringLevel", "SetNetworkProfile", "SetVariableMonitoring", "SetVariables",
    "TriggerMessage", "UnlockConnector", "UnpublishFirmware", "UpdateFirmware",
}  # fmt: skip

_SESSION = "tests/integration/test_ocpp201_session.py"
_REPORTS = f"{_SESSION}::test_every_reported_message_is_answered_kept_once_and_listed"
_CHARGING = f"{_SESSION}::test_a_201_charging_session_is_durable_idempotent_and_listed_like_16"
# action -> the test that sends it (and checks the answer and what was stored)
COVERED_BY = {
    "Authorize": _CHARGING,
    "BootNotification": "tests/integration/test_ocpp201_boot_rules.py::"
    "test_pending_allows_boot_and_reports_only_and_rejected_allows_boot_only",
    "ClearedChargingLimit": _REPORTS,
    "DataTransfer": _REPORTS,
    "FirmwareStatusNotification": _REPORTS,
    "Get15118EVCertificate": _REPORTS,
    "GetCertificateStatus": _REPORTS,
    "Heartbeat": _CHARGING,
    "LogStatusNotification": _REPORTS,
    "MeterValues": _CHARGING,
    "NotifyChargingLimit": _REPORTS,
    "NotifyCustomerInformation": _REPORTS,
    "NotifyDisplayMessages": _REPORTS,
    "NotifyEVChargingNeeds": _REPORTS,
    "NotifyEVChargingSchedule": _REPORTS,
    "NotifyEvent": _REPORTS,
    "NotifyMonitoringReport": _REPORTS,
    "NotifyReport": _REPORTS,
    "PublishFirmwareStatusNotification": _REPORTS,
    "ReportChargingProfiles": _REPORTS,
    "ReservationStatusUpdate": _REPORTS,
    "SecurityEventNotification": _REPORTS,
    "SignCertificate": _REPORTS,
    "StatusNotification": _CHARGING,
    "TransactionEvent": "tests/integration/test_ocpp201_transaction_order.py::"
    "test_any_order_and_duplication_of_events_stores_the_same_transaction",
}


def station_actions() -> set[str]:
    requests, _ = load_schemas("2.0.1")
    return (set(requests) - CSMS_INITIATED) | {"DataTransfer"}


def test_every_schema_action_is_classified_and_the_validator_agrees() -> None:
    requests, responses = load_schemas("2.0.1")
    assert set(requests) == set(responses)
    assert set(requests) >= CSMS_INITIATED, CSMS_INITIATED - set(requests)
    assert Validator.for_version("2.0.1").station_actions == station_actions()


def test_every_station_action_has_a_handler() -> None:
    adapter = CentralSystem201(CentralSystemSettings(), *(cast(Any, None) for _ in range(6)))
    assert station_actions() - adapter.actions == set()


def names_in(tree: ast.Module, function: str) -> set[str]:
    """String constants in the test function and in module-level assignments it refers to."""
    (node,) = [n for n in tree.body if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef) and n.name == function]
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    scopes: list[ast.AST] = [node]
    for statement in tree.body:
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        if isinstance(statement, ast.AnnAssign):
            targets = [statement.target]
        if any(isinstance(t, ast.Name) and t.id in used for t in targets):
            scopes.append(statement)
    return {n.value for s in scopes for n in ast.walk(s) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


@pytest.mark.parametrize("action", sorted(COVERED_BY))
def test_every_station_action_is_sent_by_the_test_named_for_it(action: str) -> None:
    path, function = COVERED_BY[action].split("::")
    tree = ast.parse((ROOT / path).read_text())
    assert action in names_in(tree, function), f"{COVERED_BY[action]} does not send {action}"


def test_the_table_lists_every_station_action() -> None:
    assert set(COVERED_BY) == station_actions()
