"""Token buckets of failed password attempts per key (a station id or a source address), in bounded memory.

A key starts with `per_minute` attempts (at least one) and earns them back at `per_minute` a minute; an attempt
takes one before any hashing, so concurrent guessers cannot overrun the budget. A full bucket is the same as no bucket,
so entries are dropped once they refill, and the table is an LRU with a cap: an attacker rotating keys evicts
old entries (then the other key and the global hashing bound still hold) instead of growing memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class FailureThrottle:
    def __init__(self, per_minute: float, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity = max(1.0, per_minute) if per_minute > 0 else 0.0  # the burst: at least one attempt
        self._rate = per_minute / 60.0  # attempts earned back per second
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, as of)

    @property
    def enabled(self) -> bool:
        return self._capacity > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str, now: float) -> float:
        entry = self._buckets.get(key)
        if entry is None:
            return self._capacity
        tokens, as_of = entry
        return min(self._capacity, tokens + (now - as_of) * self._rate)

    def wait(self, key: str) -> float:
        """Seconds until `key` may try again (0: now)."""
        if not self.enabled:
            return 0.0
        missing = 1.0 - self._tokens(key, self._clock())
        return missing / self._rate if missing > 0 else 0.0

    def take(self, key: str) -> None:
        """Spend one attempt (call after `wait` returned 0, with no await in between)."""
        if self.enabled:
            now = self._clock()
            self._set(key, self._tokens(key, now) - 1.0, now)

    def give_back(self, key: str) -> None:
        """Return the attempt a check took: it was not a failure (right password, or never checked)."""
        if self.enabled and key in self._buckets:
            now = self._clock()
            self._set(key, self._tokens(key, now) + 1.0, now)

    def forget(self, key: str) -> None:
        """A success clears the key's record, so the station is not slowed by earlier guesses."""
        self._buckets.pop(key, None)

    def _set(self, key: str, tokens: float, now: float) -> None:
        if tokens >= self._capacity:
            self._buckets.pop(key, None)
        else:
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
        self._expire(now)

    def _expire(self, now: float) -> None:
        """Drop refilled entries from the least recently used end, then the oldest beyond the cap."""
        while self._buckets:
            key, (tokens, as_of) = next(iter(self._buckets.items()))
            if len(self._buckets) <= self._max_keys and tokens + (now - as_of) * self._rate < self._capacity:
                return
            del self._buckets[key]
