"""Failure throttling in bounded memory, and password hashing off the event loop."""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel
from trio_websocket import Endpoint

from csms.stations import AuthLimits, hash_password
from csms.stations.authentication import MAX_LINGERING, StationAuthenticator, source_key
from csms.stations.handshake import Refusal
from csms.stations.passwords import verify_password
from csms.stations.throttle import FailureThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_attempt_per_refill_interval() -> None:
    clock = Clock()
    throttle = FailureThrottle(per_minute=6, clock=clock)  # a burst of 6, then one every 10 s
    for _ in range(6):
        assert throttle.wait("CP-1") == 0
        throttle.take("CP-1")
    assert throttle.wait("CP-1") == pytest.approx(10.0)
    assert throttle.wait("CP-2") == 0  # keys are independent
    clock.now += 10
    assert throttle.wait("CP-1") == 0
    throttle.take("CP-1")
    assert throttle.wait("CP-1") == pytest.approx(10.0)
    throttle.forget("CP-1")  # a success clears the record
    assert throttle.wait("CP-1") == 0 and len(throttle) == 0


def test_an_attempt_given_back_is_not_a_failure() -> None:
    throttle = FailureThrottle(per_minute=1, clock=Clock())
    throttle.take("CP-1")
    assert throttle.wait("CP-1") > 0
    throttle.give_back("CP-1")
    assert throttle.wait("CP-1") == 0 and len(throttle) == 0


def test_rotating_keys_cannot_grow_memory() -> None:
    clock = Clock()
    throttle = FailureThrottle(per_minute=10, max_keys=100, clock=clock)
    for i in range(10_000):
        throttle.take(f"attacker-{i}")
    assert len(throttle) == 100
    assert throttle.wait("attacker-9999") == 0  # one failure of ten: not throttled, but remembered
    clock.now += 60  # every bucket has refilled: the entries expire as the table is touched
    throttle.take("someone")
    assert len(throttle) == 1


def test_zero_disables_and_fractions_still_allow_one_attempt() -> None:
    off = FailureThrottle(per_minute=0)
    for _ in range(100):
        off.take("CP-1")
    assert off.wait("CP-1") == 0 and len(off) == 0
    slow = FailureThrottle(per_minute=0.5, clock=Clock())
    assert slow.wait("CP-1") == 0
    slow.take("CP-1")
    assert slow.wait("CP-1") == pytest.approx(120.0)


async def test_hash_password_leaves_the_event_loop_free() -> None:
    """Registration through the API hashes with PBKDF2: other tasks keep running while it does."""
    ticks_while_hashing = 0
    hashing = trio.Event()
    done = trio.Event()

    async def ticker() -> None:
        nonlocal ticks_while_hashing
        await hashing.wait()
        while not done.is_set():
            ticks_while_hashing += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        hashing.set()
        stored = await hash_password("s3cret-password", iterations=200_000)
        done.set()
    assert verify_password("s3cret-password", stored)
    assert ticks_while_hashing > 0


async def test_throttled_answers_are_held_but_only_so_many_at_once(autojump_clock: trio.abc.Clock) -> None:
    auth = StationAuthenticator(AuthLimits())
    refusal = Refusal(429, "throttled", linger=2.0)
    answered_at: list[float] = []

    async def answer() -> None:
        await auth.linger(refusal)
        answered_at.append(trio.current_time())

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(MAX_LINGERING + 88):
            nursery.start_soon(answer)
    assert sorted(round(t - start, 3) for t in answered_at) == [0.0] * 88 + [2.0] * MAX_LINGERING
    await auth.linger(Refusal(401, "bad credentials"))  # other refusals are answered at once
    assert trio.current_time() - start == 2.0


def test_source_key_is_the_ipv4_address_or_the_ipv6_slash_64() -> None:
    assert source_key(Endpoint("192.0.2.7", 5000, False)) == "192.0.2.7"
    assert source_key(Endpoint("::ffff:192.0.2.7", 5000, False)) == "192.0.2.7"
    a, b = Endpoint("2001:db8:1:2::1", 1, False), Endpoint("2001:db8:1:2:ffff::9", 2, False)
    assert source_key(a) == source_key(b) == "2001:db8:1:2::/64"
