"""What the OCPP 1.6 spec forbids in transaction messages beyond their schemas: refused with a CallError.

Only the certainly-wrong is refused here; a refused transaction message is retried and then dropped by the
station, so plausible-but-odd values (late readings, a meterStop below meterStart, far-future timestamps) are
stored and flagged by the transactions module instead.

Which connectors a station has: the ones it told us about, by its NumberOfConnectors configuration key (read
with GetConfiguration) or by a StatusNotification for the connector. A station that told us nothing yet (new,
never configured, no StatusNotification) gets the benefit of the doubt: any connector > 0 is accepted, because
refusing would lose a real charge from a station we simply do not know yet.
"""

from __future__ import annotations

from collections.abc import Collection

from csms.ocpp import OcppError
from csms.ocpp.errors import PROPERTY_CONSTRAINT_VIOLATION


def _refuse(message: str) -> OcppError:
    return OcppError(PROPERTY_CONSTRAINT_VIOLATION, message)


def check_meter(value: int, field: str) -> None:
    """Meter values in transaction messages are Wh register readings: never negative."""
    if value < 0:
        raise _refuse(f"{field} must not be negative (a Wh register reading): {value}")


def check_start_connector(connector_id: int, number_of_connectors: int | None, reported: Collection[int]) -> None:
    """StartTransaction.req: connectorId > 0, and (when we know them) one of the station's connectors."""
    if connector_id <= 0:
        raise _refuse(f"connectorId must be > 0 in StartTransaction (0 is the station itself): {connector_id}")
    known = {c for c in reported if c > 0}
    if number_of_connectors is None and not known:
        return
    if connector_id in known or (number_of_connectors is not None and connector_id <= number_of_connectors):
        return
    told = [f"NumberOfConnectors={number_of_connectors}"] if number_of_connectors is not None else []
    if known:
        told.append(f"StatusNotification for {sorted(known)}")
    raise _refuse(f"connectorId {connector_id} is not a connector of this station ({', '.join(told)})")
