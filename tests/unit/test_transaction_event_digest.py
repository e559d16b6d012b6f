"""A TransactionEvent's content digest decides retry (same) versus conflicting variant (different), and kept
events carry it: it must not change between releases, or a retry after an upgrade would be flagged."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from csms.transactions import SampledValue, TransactionEventInput
from csms.transactions.transaction_events import content_of

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_content_digest_is_stable_and_ignores_receive_time_and_token_status() -> None:
    samples = [SampledValue(AT, "1200.5"), SampledValue(AT, "230", measurand="Voltage", phase="L1", unit="V")]
    event = TransactionEventInput(
        "tx-1", 3, "Updated", AT, AT, "MeterValuePeriodic", id_token="TAG", id_token_type="ISO14443", samples=samples
    )
    later = TransactionEventInput(
        "tx-1",
        3,
        "Updated",
        AT,
        datetime.now(UTC),
        "MeterValuePeriodic",
        id_token="TAG",
        id_token_type="ISO14443",
        id_token_status="Blocked",
        samples=samples,
    )
    assert content_of(event) == content_of(later)
    assert hashlib.sha256(content_of(event)).hexdigest() == PINNED


PINNED = "681a70f704433f46dbe15729d86992860f41bb0a000391dac965d1a28ed5b535"  # what main (dataclasses.asdict) kept
