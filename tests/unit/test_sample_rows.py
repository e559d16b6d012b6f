"""The rows and the event a MeterValues message becomes: pinned to what earlier releases produced.

The event's dedup key is how a message retried after an upgrade emits nothing twice, so a faster way of
building it must still give the same key, byte for byte.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from csms.transactions.samples import SampledValue, sample_statements, samples_event

AT = datetime(2026, 12, 2, 9, 0, 0, 123000, tzinfo=UTC)
LATER = datetime(2026, 12, 2, 10, 0, tzinfo=timezone(timedelta(hours=1)))
SAMPLES = [
    SampledValue(AT, "1200.5"),
    SampledValue(AT, "230", measurand="Voltage", phase="L1", unit="V"),
    SampledValue(LATER, "7", measurand="SoC", location="EV", unit="Percent"),
]


def test_the_event_key_and_body_are_those_of_earlier_releases() -> None:
    event = samples_event("st-1", 1, 42, SAMPLES)
    assert event.dedup_key == "mv:ece80fe20d8e9aab1a885d70430a743be301e4db"  # computed by release f24775c
    assert [s["timestamp"] for s in event.data["samples"]] == [
        "2026-12-02T09:00:00.123000+00:00",
        "2026-12-02T09:00:00.123000+00:00",
        "2026-12-02T10:00:00+01:00",
    ]
    assert event.data["samples"][2] == {
        "timestamp": "2026-12-02T10:00:00+01:00",
        "value": "7",
        "measurand": "SoC",
        "unit": "Percent",
        "phase": "",
    }


def test_each_row_carries_its_own_samples_time_and_a_naive_time_is_utc() -> None:
    naive = datetime(2026, 12, 2, 11, 0)
    statements = sample_statements("st-1", 1, 42, naive, "MeterValues", [*SAMPLES, SampledValue(naive, "1")])
    rows = [s.args for s in statements]
    assert [r[3] for r in rows] == [
        "2026-12-02T09:00:00.123000+00:00",
        "2026-12-02T09:00:00.123000+00:00",
        "2026-12-02T10:00:00+01:00",
        "2026-12-02T11:00:00+00:00",
    ]
    assert {r[4] for r in rows} == {"2026-12-02T11:00:00+00:00"}  # received_at
