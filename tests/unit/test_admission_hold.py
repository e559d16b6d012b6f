"""The admission hold steers newcomers away from a full replica but never locks a station out."""

from __future__ import annotations

import trio
import trio.testing

from csms.stations.admission import MAX_REFUSALS, AdmissionHold


async def test_a_full_replica_refuses_a_station_a_bounded_number_of_times() -> None:
    hold = AdmissionHold()
    assert not hold.refuses("CP-1", connected=500)  # no hold: always accepted
    hold.hold(target=100, seconds=5)
    assert not hold.refuses("CP-1", connected=99)  # below its share: takes the station
    assert [hold.refuses("CP-1", connected=100) for _ in range(MAX_REFUSALS + 2)] == [True] * MAX_REFUSALS + [
        False,
        False,
    ]
    assert hold.refuses("CP-2", connected=150)  # the allowance is per station


async def test_a_hold_ends_by_itself(autojump_clock: trio.testing.MockClock) -> None:
    hold = AdmissionHold()
    hold.hold(target=10, seconds=2)
    assert hold.refuses("CP-1", connected=10)
    await trio.sleep(2)
    assert not hold.refuses("CP-1", connected=10)
