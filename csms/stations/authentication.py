"""HTTP Basic authentication of a station's handshake, safe against password guessing.

Order matters: a remembered success is accepted at once (the real station is never slowed by an attack on its
id); otherwise failures are throttled per station id and per source address BEFORE any hashing (429 with
Retry-After), and the PBKDF2 work is bounded (503 with Retry-After when the queue is full). The source is the
TCP peer: behind a proxy or L7 load balancer that is the proxy, so operators there turn the per-source limit
off (0) and rely on the per-station limit and the hashing bound.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass
from typing import Protocol

import trio
from trio_websocket import Endpoint

from csms.stations.handshake import UNAUTHORIZED_HEADERS, Refusal
from csms.stations.passwords import HashingBusy, PasswordChecker
from csms.stations.throttle import FailureThrottle

log = logging.getLogger(__name__)

BUSY_RETRY_AFTER = 1  # seconds: the hashing queue drains in well under that
MAX_LINGER = 2.0  # seconds a throttled guesser waits for its 429
MAX_LINGERING = 512  # throttled handshakes held at once; beyond that they are answered at once


@dataclass(frozen=True)
class AuthLimits:
    failures_per_minute: float = 10.0  # per station id; 0 disables
    source_failures_per_minute: float = 60.0  # per source address; 0 disables
    max_concurrent_hashes: int = 2
    max_queued_hashes: int = 256


class AuthObserver(Protocol):
    def password_hashed(self, ok: bool) -> None: ...
    def auth_throttled(self, scope: str) -> None: ...


def source_key(remote: Endpoint | str) -> str:
    """The throttling key of a peer: its IPv4 address, or its IPv6 /64 (one subscriber's whole prefix)."""
    if not isinstance(remote, Endpoint):
        return str(remote)
    address = remote.address
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class StationAuthenticator:
    def __init__(self, limits: AuthLimits, observer: AuthObserver | None = None) -> None:
        self._observer = observer
        self._lingering = 0
        self._stations = FailureThrottle(limits.failures_per_minute)
        self._sources = FailureThrottle(limits.source_failures_per_minute)
        on_hash = observer.password_hashed if observer is not None else None
        self._passwords = PasswordChecker(limits.max_concurrent_hashes, limits.max_queued_hashes, on_hash=on_hash)

    def screen(self, station_id: str, password: str | None) -> None:
        """Before the credentials are even read from Postgres: refuse (429) a throttled station id, unless the
        password is the one that last passed (a cheap check; `check` confirms it against the stored hash)."""
        if password is not None and self._passwords.remembered(station_id, password):
            return
        self._refuse_if_throttled(station_id, None)

    async def check(self, station_id: str, source: str, password: str, stored: str) -> None:
        """Return if `password` is right for the station; raise a Refusal (401, 429 or 503) otherwise."""
        if self._passwords.remembered(station_id, password, stored):
            return
        self._refuse_if_throttled(station_id, source)
        self._stations.take(station_id)
        self._sources.take(source)
        try:
            ok = await self._passwords.verify(station_id, password, stored)
        except HashingBusy:
            self._give_back(station_id, source)
            self._throttled("busy")
            busy = "too many password checks in progress; retry later"
            raise Refusal(503, busy, _retry_after(BUSY_RETRY_AFTER)) from None
        except BaseException:
            self._give_back(station_id, source)  # cancelled or failed: not a wrong password
            raise
        if not ok:
            if self._stations.wait(station_id) > 0 or self._sources.wait(source) > 0:
                # Once per key each time it becomes throttled: at most one line per refill interval.
                log.warning("throttling failed station passwords", extra={"station_id": station_id, "source": source})
            raise Refusal(401, "bad credentials", UNAUTHORIZED_HEADERS)
        self._stations.forget(station_id)
        self._sources.give_back(source)

    def _refuse_if_throttled(self, station_id: str, source: str | None) -> None:
        for scope, throttle, key in (("station", self._stations, station_id), ("source", self._sources, source)):
            wait = throttle.wait(key) if key is not None else 0.0
            if wait > 0:
                self._throttled(scope)
                reason = f"too many failed password attempts ({scope}); retry later"
                raise Refusal(429, reason, _retry_after(wait), linger=min(wait, MAX_LINGER))

    async def linger(self, refusal: Refusal) -> None:
        """Hold a throttled answer a little (bounded in number): a guesser that ignores Retry-After then makes a
        few attempts a second per connection instead of hundreds, each costing the replica a handshake."""
        if refusal.linger <= 0 or self._lingering >= MAX_LINGERING:
            return
        self._lingering += 1
        try:
            await trio.sleep(refusal.linger)
        finally:
            self._lingering -= 1

    def _throttled(self, scope: str) -> None:
        if self._observer is not None:
            self._observer.auth_throttled(scope)

    def _give_back(self, station_id: str, source: str) -> None:
        self._stations.give_back(station_id)
        self._sources.give_back(source)


def _retry_after(seconds: float) -> tuple[tuple[str, str], ...]:
    return (("Retry-After", str(max(1, math.ceil(seconds)))),)
