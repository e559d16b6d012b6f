"""Charging sessions and their meter values; idempotent under retried, late and out-of-order messages."""

from csms.transactions.ledger import MIGRATIONS, SampledValue, TransactionLedger

__all__ = ["MIGRATIONS", "SampledValue", "TransactionLedger"]
