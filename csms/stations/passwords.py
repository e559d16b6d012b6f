"""Station passwords (OCPP security profile 1), stored as salted PBKDF2 hashes.

Verification is costly on purpose, so it runs in a worker thread (hashlib releases the GIL) and successful
checks are remembered per station: a reconnect storm after a failover must not burn seconds of CPU re-deriving
keys the replica already checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections import OrderedDict

import trio

_SCHEME = "pbkdf2_sha256"
_hash_limiter = trio.CapacityLimiter(2)


def hash_password(password: str, iterations: int = 20_000) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{_SCHEME}${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


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
    """Verifies in a thread and caches successes keyed by the stored hash (a password change invalidates)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._ok: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._max = max_entries

    async def check(self, station_id: str, password: str, stored: str) -> bool:
        key = (station_id, stored)
        fingerprint = hashlib.sha256(password.encode()).digest()
        cached = self._ok.get(key)
        if cached is not None and hmac.compare_digest(cached, fingerprint):
            self._ok.move_to_end(key)
            return True
        ok = await trio.to_thread.run_sync(verify_password, password, stored, limiter=_hash_limiter)
        if ok:
            self._ok[key] = fingerprint
            if len(self._ok) > self._max:
                self._ok.popitem(last=False)
        return ok
