"""The leader's rebalancing plan: shed exactly the excess above the fair share, hold admission on every full
node, touch charging stations only for the severe part, and never plan on a fleet that is merely in flight."""

from __future__ import annotations

from functools import partial

from cluster import ShedOrder, plan_shedding, still_landing

plan = partial(plan_shedding, tolerance=0.1, step=1000, severe=1.0)


def test_a_restarted_replica_gets_exactly_its_share_and_the_full_ones_hold_admission() -> None:
    # One of three restarted: its 100 went to the others. Shed the excess only (not n*R/k to allow for the
    # balancer sending some back): the full nodes refuse newcomers while the shed stations reconnect.
    assert plan({"a": 150, "b": 150, "c": 0}, ["a", "b", "c"]) == {
        "a": ShedOrder(50, 100, 0),
        "b": ShedOrder(50, 100, 0),
    }


def test_a_node_at_its_share_holds_admission_without_shedding() -> None:
    orders = plan({"a": 140, "b": 100, "c": 60}, ["a", "b", "c"])
    assert orders == {"a": ShedOrder(40, 100, 0), "b": ShedOrder(0, 100, 0)}  # c (below) never refuses


def test_step_bounds_a_round() -> None:
    assert plan_shedding({"a": 90, "b": 0, "c": 0}, ["a", "b", "c"], tolerance=0.1, step=20, severe=1.0) == {
        "a": ShedOrder(20, 30, 20)
    }


def test_charging_stations_only_for_the_severe_part_of_the_excess() -> None:
    # Mean 100: a node at 150 is 50 % over (not severe at 1.0), one at 300 is 200 % over: of its 200 excess,
    # the 100 above mean * 2 may be charging stations.
    assert plan({"a": 150, "b": 150, "c": 0}, ["a", "b", "c"])["a"].may_interrupt == 0
    assert plan({"a": 300, "b": 0, "c": 0}, ["a", "b", "c"])["a"] == ShedOrder(200, 100, 100)
    severe_half = partial(plan_shedding, tolerance=0.1, step=1000, severe=0.25)
    assert severe_half({"a": 150, "b": 150, "c": 0}, ["a", "b", "c"])["a"] == ShedOrder(50, 100, 25)


def test_within_tolerance_nothing_moves_and_nobody_holds() -> None:
    assert plan({"a": 34, "b": 33, "c": 33}, ["a", "b", "c"]) == {}
    assert plan({"a": 36, "b": 32, "c": 32}, ["a", "b", "c"]) == {}


def test_stations_in_flight_are_not_mistaken_for_a_smaller_fleet() -> None:
    # 40 of 300 were shed last round and are still reconnecting: 100/100/60 is on its way to even, not uneven.
    assert plan({"a": 100, "b": 100, "c": 60}, ["a", "b", "c"]) != {}
    assert plan({"a": 100, "b": 100, "c": 60}, ["a", "b", "c"], fleet=300) == {}


def test_departed_nodes_do_not_count_and_a_lone_node_never_sheds() -> None:
    # Owner keys of a node that left (not in `nodes`) are ignored; the live ones are compared among themselves.
    assert plan({"a": 10, "b": 10, "gone": 50}, ["a", "b"]) == {}
    assert plan({"a": 100}, ["a"]) == {}


def test_no_round_while_a_reconnect_storm_is_still_landing() -> None:
    """Mid-storm counts (a dead replica's 3,000 landing on two survivors) plan holds against stations that
    have nowhere better to go: no round until the owned total stops growing, nor on a new leader's first look."""
    landing = partial(still_landing, tolerance=0.1)
    assert landing(900, None, 2)  # a new leader (after the failover): look once first
    assert landing(1800, 900, 2)  # +900 in a round: the storm goes on
    assert not landing(3000, 3000, 2)  # settled: plan as usual
    assert not landing(3010, 3000, 2)  # a few new stations are no storm (tolerance of one node's share)
    assert not landing(3000, 3100, 2)  # fewer (stations left, or shed ones in flight) is no storm either
    assert not landing(1000, 900, 3, fleet=1000)  # shed stations coming back up to the round's floor
