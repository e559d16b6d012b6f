"""Meter readings as the transactions module keeps them, whatever protocol version reported them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from csms.outbox import Event


@dataclass(frozen=True)
class SampledValue:
    """One sampled value with its meterValue timestamp; absent optional fields are ''. `value` is the text
    of the number (2.0.1 sends numbers: kept as their decimal text, the unit multiplier applied)."""

    timestamp: datetime
    value: str
    measurand: str = "Energy.Active.Import.Register"
    phase: str = ""
    unit: str = "Wh"
    context: str = "Sample.Periodic"
    location: str = "Outlet"
    format: str = "Raw"


# A sample is tied to the transaction it names only if that is the sender's own; any other id (another
# station's, or one never issued) is kept against the sender with transaction_id 0 and the id it named, which
# the meter_readings view flags as unknown_transaction. One statement, no extra round trip on the hot path.
INSERT_SAMPLE = """
INSERT INTO meter_values (station_id, connector_id, transaction_id, reported_transaction_id, station_timestamp,
                          received_at, source, measurand, phase, unit, context, location, format, value, evse_id)
SELECT $1, $2, coalesce(t.id, 0), CASE WHEN t.id IS NULL AND $3 <> 0 THEN $3 END, $4, $5, $6, $7, $8, $9, $10,
       $11, $12, $13, $14
FROM (VALUES (1)) AS one LEFT JOIN transactions t ON t.id = $3 AND t.station_id = $1
ON CONFLICT ON CONSTRAINT meter_values_once DO NOTHING
"""


def sample_rows(
    station_id: str,
    connector_id: int,
    transaction_id: int,
    received_at: datetime,
    source: str,
    samples: list[SampledValue],
    evse_id: int | None = None,
) -> list[tuple[Any, ...]]:
    return [
        (
            station_id,
            connector_id,
            transaction_id,
            s.timestamp,
            received_at,
            source,
            s.measurand,
            s.phase,
            s.unit,
            s.context,
            s.location,
            s.format,
            s.value,
            evse_id or 0,
        )
        for s in samples
    ]


def samples_event(station_id: str, connector_id: int, transaction_id: int, samples: list[SampledValue]) -> Event:
    """One event per message's batch of samples, keyed like meter_values_once: a retried message emits nothing."""
    key = hashlib.sha1(
        repr(sorted((s.timestamp.isoformat(), s.measurand, s.phase, s.location, s.context) for s in samples)).encode()
        + f"|{connector_id}|{transaction_id}".encode(),
        usedforsecurity=False,
    ).hexdigest()
    return Event(
        "meter_values.recorded.v1",
        "station",
        station_id,
        station_id,
        {
            "station_id": station_id,
            "connector_id": connector_id,
            "transaction_id": transaction_id or None,
            "samples": [
                {
                    "timestamp": s.timestamp.isoformat(),
                    "value": s.value,
                    "measurand": s.measurand,
                    "unit": s.unit,
                    "phase": s.phase,
                }
                for s in samples
            ],
        },
        dedup_key="mv:" + key,
    )
