"""Meter readings as the transactions module keeps them, whatever protocol version reported them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from csms.outbox import Event
from csms.storage import Statement


@dataclass(slots=True)
class SampledValue:
    """One sampled value with its meterValue timestamp; absent optional fields are ''. `value` is the text
    of the number (2.0.1 sends numbers: kept as their decimal text, the unit multiplier applied).

    Not frozen: a frozen dataclass sets each field through object.__setattr__, 3x the cost of a plain one, and
    a MeterValues message makes 8-15 of these. Treat it as a value all the same."""

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
# the meter_readings view flags as unknown_transaction. A bulk statement (one JSON row per sample): the writer
# inserts every sample of a batch in one execution. As one execution per sample (an executemany) a 5,000-station
# failover spent 5.7 s of Postgres time on 115,000 of them, the largest share of its database work.
INSERT_SAMPLES = """
INSERT INTO meter_values (station_id, connector_id, transaction_id, reported_transaction_id, station_timestamp,
                          received_at, source, measurand, phase, unit, context, location, format, value, evse_id)
SELECT r->>0, (r->>1)::integer, coalesce(t.id, 0),
       CASE WHEN t.id IS NULL AND (r->>2)::integer <> 0 THEN (r->>2)::integer END,
       (r->>3)::timestamptz, (r->>4)::timestamptz, r->>5, r->>6, r->>7, r->>8, r->>9, r->>10, r->>11, r->>12,
       (r->>13)::integer
FROM jsonb_array_elements($1::jsonb) AS i (r)
LEFT JOIN transactions t ON t.id = (r->>2)::integer AND t.station_id = r->>0
ON CONFLICT ON CONSTRAINT meter_values_once DO NOTHING
"""


def sample_statements(
    station_id: str,
    connector_id: int,
    transaction_id: int,
    received_at: datetime,
    source: str,
    samples: list[SampledValue],
    evse_id: int | None = None,
) -> list[Statement]:
    """The samples as bulk rows of INSERT_SAMPLES, times in ISO 8601 with their offset (a time without one is
    UTC, as when Postgres is given it as a parameter)."""
    received = _iso(received_at)
    stamps = _Stamps(_iso)
    return [
        Statement(
            INSERT_SAMPLES,
            (
                station_id,
                connector_id,
                transaction_id,
                stamps.of(s.timestamp),
                received,
                source,
                s.measurand,
                s.phase,
                s.unit,
                s.context,
                s.location,
                s.format,
                s.value,
                evse_id or 0,
            ),
            bulk=True,
        )
        for s in samples
    ]


class _Stamps:
    """A message's samples share their meterValue's timestamp object: format each one once (isoformat is
    ~1 us, a sizeable part of a 12-sample message's CPU)."""

    __slots__ = ("_last", "_render", "_text")

    def __init__(self, render: Callable[[datetime], str]) -> None:
        self._render = render
        self._last: datetime | None = None
        self._text = ""

    def of(self, value: datetime) -> str:
        if value is not self._last:
            self._last, self._text = value, self._render(value)
        return self._text


def _iso(value: datetime) -> str:
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).isoformat()


def samples_event(station_id: str, connector_id: int, transaction_id: int, samples: list[SampledValue]) -> Event:
    """One event per message's batch of samples, keyed like meter_values_once: a retried message emits nothing."""
    stamps = _Stamps(datetime.isoformat)
    texts = [stamps.of(s.timestamp) for s in samples]
    key = hashlib.sha1(
        repr(
            sorted((t, s.measurand, s.phase, s.location, s.context) for t, s in zip(texts, samples, strict=True))
        ).encode()
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
                {"timestamp": t, "value": s.value, "measurand": s.measurand, "unit": s.unit, "phase": s.phase}
                for t, s in zip(texts, samples, strict=True)
            ],
        },
        dedup_key="mv:" + key,
    )
