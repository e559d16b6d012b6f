"""Station passwords (OCPP security profile 1), stored as salted PBKDF2 hashes.

PBKDF2 is costly on purpose, so it never runs on the event loop: hashing and verification run in worker threads
(hashlib releases the GIL). Verification is bounded twice: at most `max_concurrent` run at once and at most
`max_queued` wait, and a check beyond that is refused at once (`HashingBusy`) instead of queuing unbounded
work. Successful checks are remembered per station: a reconnect storm after a failover must not burn seconds
of CPU re-deriving keys the replica already checked, and a station that passed is never slowed by others.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections import OrderedDict
from collections.abc import Callable

import trio

_SCHEME = "pbkdf2_sha256"
_registration_limiter = trio.CapacityLimiter(2)


class HashingBusy(Exception):
    """Too many password checks are already running or waiting."""


def _hash_now(password: str, iterations: int) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{_SCHEME}${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


async def hash_password(password: str, iterations: int = 20_000) -> str:
    """A new stored hash, derived in a worker thread (station registration through the API)."""
    return await trio.to_thread.run_sync(_hash_now, password, iterations, limiter=_registration_limiter)


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            return False
        computed = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


class PasswordChecker:
    """Bounded verification in threads, and a cache of successes keyed by the stored hash (a change invalidates)."""

    def __init__(
        self,
        max_concurrent: int = 2,
        max_queued: int = 256,
        max_entries: int = 100_000,
        on_hash: Callable[[bool], None] | None = None,
    ) -> None:
        self._ok: OrderedDict[str, tuple[str, bytes]] = OrderedDict()  # station -> (stored hash, fingerprint)
        self._max = max_entries
        self._limiter = trio.CapacityLimiter(max_concurrent)
        self._max_pending = max_concurrent + max_queued
        self._pending = 0
        self._on_hash = on_hash

    def remembered(self, station_id: str, password: str, stored: str | None = None) -> bool:
        """True if this password already passed for the station (for this stored hash, if given): no PBKDF2."""
        cached = self._ok.get(station_id)
        if cached is None or (stored is not None and cached[0] != stored):
            return False
        if not hmac.compare_digest(cached[1], _fingerprint(password)):
            return False
        self._ok.move_to_end(station_id)
        return True

    async def verify(self, station_id: str, password: str, stored: str) -> bool:
        """Run PBKDF2 in a worker thread; raises HashingBusy when the bounded queue is full."""
        if self._pending >= self._max_pending:
            raise HashingBusy
        self._pending += 1
        try:
            ok = await trio.to_thread.run_sync(verify_password, password, stored, limiter=self._limiter)
        finally:
            self._pending -= 1
        if self._on_hash is not None:
            self._on_hash(ok)
        if ok:
            self._ok[station_id] = (stored, _fingerprint(password))
            self._ok.move_to_end(station_id)
            if len(self._ok) > self._max:
                self._ok.popitem(last=False)
        return ok


def _fingerprint(password: str) -> bytes:
    return hashlib.sha256(password.encode()).digest()
