"""The transactions module's events (csms.outbox catalogue): built here, written in the change's transaction.

Protocol-neutral: 1.6 StartTransaction/StopTransaction/MeterValues and 2.0.1 TransactionEvents emit the same
types; ``protocol`` says which one a session speaks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from csms.outbox import Event
from csms.transactions.samples import SampledValue


def transaction_event(name: str, station_id: str, transaction_id: int, **data: Any) -> Event:
    return Event(
        name,
        "transaction",
        str(transaction_id),
        station_id,
        {"transaction_id": transaction_id, "station_id": station_id, **data},
    )


def started(
    station_id: str,
    transaction_id: int,
    *,
    connector_id: int,
    id_token: str | None,
    id_token_status: str | None,
    meter_start: int | None,
    started_at: datetime,
    protocol: str,
) -> Event:
    return transaction_event(
        "transaction.started.v1",
        station_id,
        transaction_id,
        connector_id=connector_id,
        id_token=id_token,
        id_token_status=id_token_status,
        meter_start_wh=meter_start,
        started_at=started_at.isoformat(),
        protocol=protocol,
    )


def ended(
    station_id: str,
    transaction_id: int,
    meter_start: int | None,
    meter_stop: int | None,
    reason: str,
    stopped_at: datetime,
    id_tag: str | None,
    protocol: str | None = None,
) -> Event:
    extra = {"protocol": protocol} if protocol else {}
    energy = meter_stop - meter_start if meter_stop is not None and meter_start is not None else None
    return transaction_event(
        "transaction.ended.v1",
        station_id,
        transaction_id,
        meter_stop_wh=meter_stop,
        energy_wh=energy,
        reason=reason,
        stopped_at=stopped_at.isoformat(),
        id_token=id_tag,
        **extra,
    )


def ended_row(row: Any, reason: str) -> Event:
    """From a RETURNING id, station_id, meter_start, meter_stop, stop_timestamp (placeholder stops)."""
    return ended(
        row["station_id"], row["id"], row["meter_start"], row["meter_stop"], reason, row["stop_timestamp"], None
    )


# transaction.updated.v1 from the session's own row: energy so far = the latest register reading - meterStart.
# Arguments (csms.outbox.derived_events): transaction id, station id, register Wh, reading time, dedup key.
UPDATED = """
SELECT 'transaction', t.id::text, 'csms.transaction.updated.v1', t.station_id,
       jsonb_build_object('transaction_id', t.id, 'station_id', t.station_id, 'meter_wh', (r->>2)::bigint,
                          'energy_so_far_wh', (r->>2)::bigint - t.meter_start, 'at', r->>3),
       r->>4, n
FROM inputs JOIN transactions t ON t.id = (r->>0)::bigint AND t.station_id = r->>1
WHERE t.stop_received_at IS NULL AND (r->>2)::bigint >= t.meter_start
"""


def register_wh(samples: list[SampledValue]) -> tuple[int, datetime] | None:
    """The newest energy register reading of a message, in Wh (None if it has none we can read)."""
    readings = []
    for s in samples:
        if s.measurand != "Energy.Active.Import.Register" or s.format != "Raw" or s.phase:
            continue
        try:
            value = float(s.value) * (1000 if s.unit == "kWh" else 1)
        except ValueError:
            continue
        if 0 <= value < 2**62:
            readings.append((s.timestamp, int(value)))
    if not readings:
        return None
    at, wh = max(readings)
    return wh, at
