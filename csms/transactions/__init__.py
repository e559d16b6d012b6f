"""Charging sessions and their meter values; idempotent under retried, late and out-of-order messages."""

from csms.transactions.ledger import (
    METER_VALUES,
    MIGRATIONS,
    TransactionLedger,
    remote_started,
    transaction_event_op,
)
from csms.transactions.samples import SampledValue
from csms.transactions.sessions_v16 import start_statements, started_id, stop_outcome, stop_statements
from csms.transactions.transaction_events import EventOutcome, TransactionEventInput, event_statements, outcome_of
from csms.transactions.views import CSV_COLUMNS, SessionFilter, SessionViews

__all__ = [
    "CSV_COLUMNS",
    "METER_VALUES",
    "MIGRATIONS",
    "EventOutcome",
    "SampledValue",
    "SessionFilter",
    "SessionViews",
    "TransactionEventInput",
    "TransactionLedger",
    "event_statements",
    "outcome_of",
    "remote_started",
    "start_statements",
    "started_id",
    "stop_outcome",
    "stop_statements",
    "transaction_event_op",
]
