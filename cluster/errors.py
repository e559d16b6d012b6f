"""Typed etcd failures, so callers can tell "try again later" from "your request is wrong"."""

from __future__ import annotations


class EtcdError(Exception):
    """etcd answered, but with an error (bad request, permission, lease not found, ...)."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class EtcdUnavailable(EtcdError):
    """No endpoint answered within the deadline (connect error, timeout, no leader)."""


class EtcdCompacted(EtcdError):
    """A watch or read asked for history that etcd has already compacted away.

    The caller has missed events and must re-read current state before watching again
    from ``compact_revision``.
    """

    def __init__(self, message: str, *, compact_revision: int) -> None:
        super().__init__(message, code=11)
        self.compact_revision = compact_revision


class EtcdLeaseNotFound(EtcdError):
    """The lease expired or was revoked: every key bound to it is gone."""


class ClaimSuperseded(Exception):
    """A newer claim for the station landed while ours was being made: our connection lost."""
