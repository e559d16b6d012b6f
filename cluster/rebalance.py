"""Rebalancing plan: which nodes should shed how many stations, and which must turn newcomers away meanwhile.

Pure arithmetic, so the leader job stays trivial and the policy is unit-testable.

Why the plan holds admission, not just sheds: a shed station reconnects through a load balancer that knows
nothing of load. With R replicas of which k are under-loaded, a plain round-robin sends it to an under-loaded
one with probability k/R only, so moving n stations costs about n*R/k disconnects (three per move when one
replica of three restarts). Instead every node at or above its fair share refuses new connections for a
short hold (HTTP 503 before the upgrade, which costs a station a retry, not a session); the shed station's
next attempt lands on a node below its share, so each move costs one disconnect and the plan sheds exactly the
excess. The under-loaded nodes never refuse, so there is always somewhere to go.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ShedOrder:
    """What the leader asks of one node for one round."""

    count: int  # stations to close now (0: only hold admission)
    target: int  # the node's fair share: refuse new stations while holding this many or more
    may_interrupt: int  # how many of `count` may have a charging session (the severe part of the excess)


def still_landing(total: int, previous: int | None, nodes: int, *, tolerance: float, fleet: int = 0) -> bool:
    """Whether stations are still arriving: the owned ``total`` grew since the ``previous`` round's (None: there
    was none, e.g. a new leader) beyond what one node's tolerance allows (counting the ``fleet`` floor as seen).

    A reconnect storm after a replica died is thousands of stations landing on the survivors; counts taken in
    the middle of it make a plan that holds admission on whichever survivor is ahead, against stations that
    have nowhere better to go, and every refusal costs a station its growing back-off (a storm of 3,000 drew
    ~3,000 refusals and took ~50 s). Once the total stops growing, the next round plans as usual.
    """
    if previous is None:
        return True
    seen = max(previous, fleet)
    return total > seen + max(1.0, seen / max(1, nodes) * tolerance)


def plan_shedding(
    counts: dict[str, int],
    nodes: list[str],
    *,
    tolerance: float,
    step: int,
    severe: float,
    fleet: int = 0,
) -> dict[str, ShedOrder]:
    """Orders for one round, or {} when every node is within mean * (1 + tolerance).

    `fleet` is a floor for the number of stations: ones shed last round may still be reconnecting and owned by
    nobody, and planning without them would shed again what is merely in flight. Charging stations may be
    shed only for the part of a node's excess above mean * (1 + severe).
    """
    if len(nodes) < 2:
        return {}
    live = {node: counts.get(node, 0) for node in nodes}
    mean = max(sum(live.values()), fleet) / len(live)
    ceiling = math.ceil(mean * (1 + tolerance))
    if all(count <= ceiling for count in live.values()):
        return {}
    fair = math.ceil(mean)
    severe_line = math.ceil(mean * (1 + severe))
    orders = {}
    for node, count in sorted(live.items()):
        if count < fair:
            continue  # under-loaded: it takes the shed stations
        shed = min(count - fair, step) if count > ceiling else 0
        orders[node] = ShedOrder(shed, fair, max(0, min(shed, count - severe_line)))
    return orders
