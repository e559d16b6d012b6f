"""Password guessing against real handshakes: throttled before hashing, bounded hashing, others unaffected."""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass, field

import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from devcluster.station import SimulatedStation
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration

RIGHT = "right-password-1"


@dataclass
class Answer:
    status: int
    retry_after: int | None = None


async def attempt(csms: Running, station_id: str, password: str) -> Answer:
    """One handshake with HTTP Basic credentials: 101 if the upgrade happened, else the refusal."""
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    try:
        async with open_websocket_url(
            f"{csms.ocpp_url}/{station_id}",
            subprotocols=["ocpp1.6"],
            extra_headers=[(b"Authorization", f"Basic {token}".encode())],
            connect_timeout=30,
        ):
            return Answer(101)
    except ConnectionRejected as refused:
        headers = {k.decode().lower(): v.decode() for k, v in refused.headers}
        retry = headers.get("retry-after")
        return Answer(refused.status_code, int(retry) if retry is not None else None)


async def password_hashes(csms: Running) -> dict[str, int]:
    async with csms.api() as api:
        text = (await api.get("/metrics")).text
    found = re.findall(r'^csms_station_password_hashes_total\{outcome="(\w+)"\} ([0-9.e+]+)$', text, re.M)
    counts = {"ok": 0, "failed": 0}
    counts.update({outcome: int(float(value)) for outcome, value in found})
    return counts


async def attempts(csms: Running, station_id: str, password: str, count: int) -> list[Answer]:
    """`count` handshakes at once."""
    answers: list[Answer] = []

    async def one() -> None:
        answers.append(await attempt(csms, station_id, password))

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
    return answers


@pytest.mark.parametrize(
    "replica_overrides",
    [{"CSMS_AUTH_FAILURES_PER_MINUTE": "20", "CSMS_AUTH_SOURCE_FAILURES_PER_MINUTE": "0"}],
)
async def test_guessing_is_throttled_before_hashing_and_the_right_password_works_after(
    csms: Running, caplog: pytest.LogCaptureFixture
) -> None:
    await csms.put_station("CP-V", password=RIGHT)
    for _ in range(20):  # the burst: each wrong guess costs one PBKDF2 and gets 401
        assert (await attempt(csms, "CP-V", "guess")).status == 401
    caplog.set_level(logging.INFO)
    caplog.clear()
    throttled = await attempts(csms, "CP-V", "guess", 40)  # 8 guessers x 5, in parallel
    assert {a.status for a in throttled} == {429}
    assert all(a.retry_after is not None and 1 <= a.retry_after <= 3 for a in throttled)
    assert await password_hashes(csms) == {"ok": 0, "failed": 20}  # nothing hashed once throttled
    assert not [r for r in caplog.records if r.getMessage() == "handshake refused"]  # no log line per guess

    # The station waits as told, then its right password works and clears the count.
    await trio.sleep(max(a.retry_after or 0 for a in throttled))
    async with SimulatedStation.connect(csms.ocpp_url, "CP-V", password=RIGHT) as cp:
        assert "currentTime" in await cp.call("Heartbeat", {})
    assert await password_hashes(csms) == {"ok": 1, "failed": 20}
    assert (await attempt(csms, "CP-V", "guess")).status == 401

    # A new attack throttles the guessers, but the station whose password passed is not slowed at all.
    answers = await attempts(csms, "CP-V", "guess", 40)
    assert {a.status for a in answers} == {401, 429}
    async with SimulatedStation.connect(csms.ocpp_url, "CP-V", password=RIGHT) as cp:
        assert "currentTime" in await cp.call("Heartbeat", {})
    assert (await password_hashes(csms))["ok"] == 1  # remembered: no PBKDF2 for the right password again


@pytest.mark.parametrize(
    "replica_overrides",
    [{"CSMS_AUTH_FAILURES_PER_MINUTE": "100", "CSMS_AUTH_SOURCE_FAILURES_PER_MINUTE": "10"}],
)
async def test_per_source_limit_spans_station_ids(csms: Running) -> None:
    for station_id in ("CP-A", "CP-B", "CP-C", "CP-D", "CP-KNOWN"):
        await csms.put_station(station_id, password=RIGHT)
    async with SimulatedStation.connect(csms.ocpp_url, "CP-KNOWN", password=RIGHT):
        pass
    statuses = [(await attempt(csms, station_id, "guess")).status for station_id in ("CP-A", "CP-B", "CP-C") * 4]
    assert statuses == [401] * 10 + [429] * 2  # a guesser rotating station ids meets the source's limit
    assert (await attempt(csms, "CP-D", RIGHT)).status == 429  # same source, password never checked here
    async with SimulatedStation.connect(csms.ocpp_url, "CP-KNOWN", password=RIGHT) as cp:
        assert "currentTime" in await cp.call("Heartbeat", {})
    assert await password_hashes(csms) == {"ok": 1, "failed": 10}


@pytest.mark.parametrize(
    "replica_overrides",
    [
        {
            "CSMS_PASSWORD_ITERATIONS": "1000000",  # ~0.3 s per check: the queue is full while guesses arrive
            "CSMS_AUTH_MAX_CONCURRENT_HASHES": "1",
            "CSMS_AUTH_MAX_QUEUED_HASHES": "1",
            "CSMS_AUTH_FAILURES_PER_MINUTE": "1000",
            "CSMS_AUTH_SOURCE_FAILURES_PER_MINUTE": "0",
        }
    ],
)
async def test_a_full_hashing_queue_refuses_at_once(csms: Running) -> None:
    await csms.put_station("CP-SLOW", password=RIGHT)
    order: list[Answer] = []

    async def one() -> None:
        order.append(await attempt(csms, "CP-SLOW", "guess"))

    async with trio.open_nursery() as nursery:
        for _ in range(12):
            nursery.start_soon(one)
    statuses = [a.status for a in order]
    assert set(statuses) == {401, 503} and len(statuses) == 12
    assert all(a.retry_after == 1 for a in order if a.status == 503)
    assert statuses[0] == 503  # refused without waiting for the running check
    assert (await password_hashes(csms))["failed"] == statuses.count(401)


@dataclass
class Guessers:
    attempts: int = 0
    statuses: set[int] = field(default_factory=set)
    throttled: trio.Event = field(default_factory=trio.Event)


@pytest.mark.parametrize(
    "replica_overrides",
    [{"CSMS_AUTH_FAILURES_PER_MINUTE": "5", "CSMS_AUTH_SOURCE_FAILURES_PER_MINUTE": "0"}],
)
async def test_other_stations_are_served_while_guessers_run(csms: Running) -> None:
    await csms.put_station("CP-VICTIM", password=RIGHT)
    normal = [f"CP-N{i}" for i in range(20)]
    for station_id in normal:
        await csms.put_station(station_id, password=f"{station_id}-password")
    guessers = Guessers()

    async def guess() -> None:
        while True:
            answer = await attempt(csms, "CP-VICTIM", "guess")
            guessers.attempts += 1
            guessers.statuses.add(answer.status)
            if answer.status == 429:
                guessers.throttled.set()

    served: list[str] = []

    async def station(station_id: str, until_attempts: int) -> None:
        """Boot, then heartbeats until the guessers have made `until_attempts` (at least 3 calls)."""
        async with SimulatedStation.connect(csms.ocpp_url, station_id, password=f"{station_id}-password") as cp:
            assert (await cp.boot())["status"] == "Accepted"
            calls = 0
            while calls < 3 or guessers.attempts < until_attempts:
                assert "currentTime" in await cp.call("Heartbeat", {})
                calls += 1
                await trio.sleep(0.05)  # a station's pace, not a synchronisation
        served.append(station_id)

    with trio.fail_after(120):
        async with trio.open_nursery() as attack:
            for _ in range(8):
                attack.start_soon(guess)
            await guessers.throttled.wait()
            until = guessers.attempts + 16  # the guessers make 16 more attempts while the fleet is served
            async with trio.open_nursery() as fleet:
                for station_id in normal:
                    fleet.start_soon(station, station_id, until)
            attack.cancel_scope.cancel()
    assert sorted(served) == sorted(normal)
    assert guessers.statuses <= {401, 429}
    # The attack cost the burst's hashes only; each normal station cost one.
    assert await password_hashes(csms) == {"ok": 20, "failed": 5}
