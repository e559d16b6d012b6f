"""Site allocation as pure functions: fair share, min/max, priorities, under-use, and the held-amount rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from csms.sites import Demand, Held, SiteSpec, StationSpec, held_amps, plan
from csms.sites.allocation import under_use_cap


def demand(station_id: str, *, charging: bool = True, cap: float = 32.0, priority: int = 0, **kw: object) -> Demand:
    values: dict[str, object] = {
        "min_current": 6.0,
        "max_current": 32.0,
        "weight": 1.0,
        "counted_at_max": False,
        **kw,
    }
    return Demand(station_id, charging=charging, cap=cap, priority=priority, **values)  # type: ignore[arg-type]


def total(targets: dict, demands: list[Demand]) -> float:
    return sum(d.weight * max(targets[d.station_id].default, targets[d.station_id].tx or 0) for d in demands)


def test_fair_share_among_charging_and_idle_hold_nothing_when_the_budget_is_used() -> None:
    demands = [demand("a"), demand("b"), demand("c"), demand("idle", charging=False)]
    targets = plan(60, demands, failsafe={"idle": 15})
    assert [targets[s].tx for s in "abc"] == [20, 20, 20]
    assert targets["idle"].tx is None and targets["idle"].default == 0
    assert total(targets, demands) <= 60


def test_under_users_release_budget_to_the_others() -> None:
    demands = [demand("a", cap=8), demand("b"), demand("c")]
    targets = plan(60, demands, failsafe={})
    assert targets["a"].tx == 8 and targets["b"].tx == 26 and targets["c"].tx == 26


def test_headroom_becomes_the_idle_stations_failsafe_up_to_its_ceiling() -> None:
    demands = [demand("a", cap=10), demand("i1", charging=False), demand("i2", charging=False)]
    targets = plan(100, demands, failsafe={"i1": 20, "i2": 50})
    assert targets["a"].tx == 10
    assert targets["i1"].default == 20 and targets["i2"].default == 32  # ceiling, then the station's max
    assert total(targets, demands) <= 100


def test_minimums_by_priority_then_pause() -> None:
    demands = [demand("low", priority=0), demand("high", priority=5), demand("mid", priority=1)]
    targets = plan(13, demands, failsafe={})
    assert targets["high"].tx == 7 and targets["mid"].tx == 6 and targets["low"].tx == 0


def test_stuck_station_counts_at_max_and_is_asked_for_the_others_share() -> None:
    demands = [demand("stuck", counted_at_max=True), demand("b"), demand("c")]
    targets = plan(72, demands, failsafe={})
    assert targets["b"].tx == 20 and targets["c"].tx == 20
    assert targets["stuck"].tx == 20 and targets["stuck"].default == 20  # safe: it is counted at its max


def test_a_charging_stations_cap_follows_its_allocation() -> None:
    """The failsafe is a station-wide cap: below the TxProfile it would throttle the allocation."""
    targets = plan(60, [demand("a"), demand("b", charging=False)], failsafe={"a": 30, "b": 30})
    assert targets["a"].default == targets["a"].tx == 32 and targets["b"].default == 28


def test_watt_limits_weigh_stations_by_phases() -> None:
    demands = [demand("three", weight=230 * 3), demand("one", weight=230 * 1)]
    targets = plan(230 * 3 * 10 + 230 * 10, demands, failsafe={})
    assert targets["three"].tx == pytest.approx(10) and targets["one"].tx == pytest.approx(10)


def test_held_amount_rules() -> None:
    assert held_amps(None, 32, None) == 32  # never confirmed a failsafe: counted at its max
    assert held_amps(Held(default_limit=10, stuck=True), 32, None) == 32
    assert held_amps(Held(default_limit=10, default_pending=4), 32, None) == 10  # higher of old and new
    held = Held(default_limit=2, transaction_id=7, tx_limit=12, tx_pending=20)
    assert held_amps(held, 32, 7) == 20
    assert held_amps(held, 32, 8) == 2  # a TxProfile counts only for its own transaction


def test_under_use_cap_has_hysteresis() -> None:
    assert under_use_cap(20, 8, 32, 1.0) == 9
    assert under_use_cap(9, 8, 32, 1.0) == 9  # stays released while it still draws less
    assert under_use_cap(9, 8.6, 32, 1.0) == 32  # draws up to its allocation: may have its share back


def test_limit_falls_back_from_override_to_schedule() -> None:
    spec = SiteSpec("depot", 100, "A", (StationSpec("a"),), schedule=((8 * 60, 40), (18 * 60, 80)))
    day = datetime(2026, 1, 1, tzinfo=UTC)
    assert spec.limit_at(day.replace(hour=7)) == 80  # before the first entry: yesterday's last
    assert spec.limit_at(day.replace(hour=9)) == 40
    from dataclasses import replace

    live = replace(spec, override_limit=20, override_until=day.replace(hour=10))
    assert live.limit_at(day.replace(hour=9)) == 20
    assert live.limit_at(day.replace(hour=11)) == 40


@pytest.mark.parametrize("protocol", ["ocpp1.6", "ocpp2.0.1"])
def test_site_profiles_are_valid_commands_in_each_protocol(protocol: str) -> None:
    """The failsafe, the allocation and the release pass the schema and rules a command is checked by."""
    from csms.commands.catalogue import validator_for
    from csms.operations import check_operation
    from csms.sites.profiles import allocation_profile, failsafe_profile, release_profile

    transaction: int | str = 7 if protocol == "ocpp1.6" else "tx-7"
    for action, payload in (
        failsafe_profile(protocol, 13.3, 3),
        allocation_profile(protocol, 20.0, 1, 1, transaction),
        release_profile(protocol),
    ):
        validator_for(protocol).validate_request(action, payload)
        check_operation(protocol, action, payload)
