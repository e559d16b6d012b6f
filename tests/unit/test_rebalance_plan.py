"""The leader's rebalancing plan: shed only above mean * (1 + tolerance), at most `step` per node per round."""

from __future__ import annotations

from cluster import plan_shedding


def test_scale_out_sheds_the_overloaded_node_gradually() -> None:
    assert plan_shedding({"a": 90, "b": 0, "c": 0}, ["a", "b", "c"], 0.1, step=20) == {"a": 20}
    assert plan_shedding({"a": 90, "b": 0, "c": 0}, ["a", "b", "c"], 0.1, step=100) == {"a": 60}


def test_within_tolerance_nothing_moves() -> None:
    assert plan_shedding({"a": 34, "b": 33, "c": 33}, ["a", "b", "c"], 0.1, step=20) == {}
    assert plan_shedding({"a": 36, "b": 32, "c": 32}, ["a", "b", "c"], 0.1, step=20) == {}


def test_departed_nodes_do_not_count_and_a_lone_node_never_sheds() -> None:
    # Owner keys of a node that left (not in `nodes`) are ignored; the live ones are compared among themselves.
    assert plan_shedding({"a": 10, "b": 10, "gone": 50}, ["a", "b"], 0.1, step=20) == {}
    assert plan_shedding({"a": 100}, ["a"], 0.1, step=20) == {}
