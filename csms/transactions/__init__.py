"""Charging sessions and their meter values; idempotent under retried, late and out-of-order messages."""

from csms.transactions.ledger import MIGRATIONS, SampledValue, TransactionLedger
from csms.transactions.views import CSV_COLUMNS, SessionFilter, SessionViews

__all__ = ["CSV_COLUMNS", "MIGRATIONS", "SampledValue", "SessionFilter", "SessionViews", "TransactionLedger"]
