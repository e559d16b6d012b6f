"""Rebalancing plan: which nodes should shed how many stations to approach an even spread.

Pure arithmetic, so the leader job stays trivial and the policy is unit-testable. Shedding is gradual: each
round moves at most `step` stations per node, because shed stations reconnect through the load balancer,
which may well send some of them straight back.
"""

from __future__ import annotations

import math


def plan_shedding(counts: dict[str, int], nodes: list[str], tolerance: float, step: int) -> dict[str, int]:
    """{node: stations to shed this round} for nodes above mean * (1 + tolerance)."""
    if len(nodes) < 2:
        return {}
    live = {node: counts.get(node, 0) for node in nodes}
    mean = sum(live.values()) / len(live)
    ceiling = math.ceil(mean * (1 + tolerance))
    target = math.ceil(mean)
    return {
        node: min(count - target, step)
        for node, count in sorted(live.items())
        if count > ceiling and count - target > 0
    }
