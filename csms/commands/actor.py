"""Who asked for a command: what the audit trail records, so it names a person or service, not just a role."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """``name``: ``token:<token name>`` (REST API), ``console:<token name>`` (a console user signed in with that
    token) or ``csms:<job>`` (the CSMS itself). ``role``: the role the token held then; None for the CSMS."""

    name: str
    role: str | None = None
