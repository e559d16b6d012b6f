"""How a site's budget is shared, and how much each station may draw given what it holds (pure functions).

Every station holds two limits: a station-wide cap (the "default": 1.6 ChargePointMaxProfile, 2.0.1
ChargingStationMaxProfile, which bounds all its connectors together) and, while charging, a TxProfile. Whatever
the station does, with any number of cars, it draws at most its cap, counted here as the higher of the two it
holds, so the site is safe when the sum of those "held" amounts stays within the limit, with or without the
CSMS. A charging station's cap follows its allocation (else it would throttle it); idle stations hold a share of
the headroom as their cap (0 when the budget is in use): sessions that start while the CSMS is away draw no more
than that together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

STEP = 0.1  # A: allocations are whole tenths of an ampere, rounded down


@dataclass(frozen=True)
class Held:
    """What the station has confirmed (in force) and what was sent but not answered (pending)."""

    default_limit: float | None = None
    default_pending: float | None = None
    transaction_id: int | None = None
    tx_limit: float | None = None
    tx_pending: float | None = None
    stuck: bool = False


@dataclass(frozen=True)
class Demand:
    station_id: str
    min_current: float
    max_current: float
    priority: int
    weight: float  # budget units per ampere
    charging: bool
    cap: float  # the most it can use now (max_current, or less after measured under-use)
    counted_at_max: bool  # stuck or not yet holding a failsafe: counted at max
    holding: float | None = None  # the TxProfile it holds now, for this session


@dataclass(frozen=True)
class Target:
    default: float
    tx: float | None  # None: not charging


def floor_step(value: float) -> float:
    return max(0.0, math.floor(value / STEP + 1e-9) * STEP)


def held_amps(held: Held | None, max_current: float, open_transaction: int | None) -> float:
    """The most this station may draw given what it holds; pending counts at the higher of old and new, a stuck
    station or one without a confirmed failsafe at its max. A TxProfile counts only for its own transaction."""
    if held is None or held.stuck or held.default_limit is None:
        return max_current
    amps = max(held.default_limit, held.default_pending or 0.0)
    if open_transaction is not None and held.transaction_id == open_transaction:
        amps = max(amps, held.tx_limit or 0.0, held.tx_pending or 0.0)
    return min(amps, max_current)


def under_use_cap(allocated: float | None, measured: float | None, max_current: float, margin: float) -> float:
    """A station drawing clearly less than its allocation releases the rest, keeping ``margin`` to grow back:
    once it draws within half the margin of its allocation it may have its full share again."""
    if allocated is None or measured is None or measured >= allocated - margin / 2:
        return max_current
    return min(max_current, measured + margin)


def _fill(members: Sequence[Demand], alloc: dict[str, float], budget: float) -> float:
    """Raise everyone to one level (water-filling) within their caps; returns what is left."""
    if not members or budget <= 0:
        return budget
    top = max(d.cap for d in members)

    def cost(level: float) -> float:
        return sum(d.weight * (max(alloc[d.station_id], min(level, d.cap)) - alloc[d.station_id]) for d in members)

    low, high = 0.0, top
    if cost(high) <= budget:
        low = high
    else:
        for _ in range(50):
            mid = (low + high) / 2
            low, high = (mid, high) if cost(mid) <= budget else (low, mid)
    for d in members:
        new = floor_step(max(alloc[d.station_id], min(low, d.cap)))
        budget -= d.weight * (new - alloc[d.station_id])
        alloc[d.station_id] = new
    return budget


def plan(
    budget: float,
    demands: Sequence[Demand],
    failsafe: Mapping[str, float],
    *,
    slack: float = 0.0,
) -> dict[str, Target]:
    """Targets whose held amounts sum to at most ``budget`` (counting ``counted_at_max`` stations at max).

    Charging stations first get their minimum (highest priority first; those the budget cannot reach get 0 and
    pause), then one level per priority tier up to their caps. What is left is the headroom, shared by the idle
    stations as their default up to their failsafe current.

    ``slack`` (budget units) keeps small reductions from being sent: stations whose share fell a little keep what
    they hold, smallest fall first, while those falls add up to at most ``slack``; the others share the rest. So
    meter noise does not reprofile every station, while a session that needs room still gets it.
    """
    targets = _plan(budget, demands, failsafe, {})
    falls = sorted(
        (d.weight * (d.holding - (targets[d.station_id].tx or 0.0)), d.station_id, d.holding)
        for d in demands
        if d.holding is not None and not d.counted_at_max and d.charging
    )
    kept: dict[str, float] = {}
    total = 0.0
    for fall, station_id, holding in falls:
        if fall <= 1e-9:
            continue
        if total + fall > slack:
            break
        total += fall
        kept[station_id] = holding
    return _plan(budget, demands, failsafe, kept) if kept else targets


def _plan(
    budget: float,
    demands: Sequence[Demand],
    failsafe: Mapping[str, float],
    kept: Mapping[str, float],
) -> dict[str, Target]:
    left = budget - sum(d.weight * d.max_current for d in demands if d.counted_at_max)
    left -= sum(d.weight * kept[d.station_id] for d in demands if d.station_id in kept)
    targets: dict[str, Target] = {}
    active = sorted(
        (d for d in demands if d.charging and not d.counted_at_max and d.station_id not in kept),
        key=lambda d: (-d.priority, d.station_id),
    )
    alloc = dict.fromkeys((d.station_id for d in active), 0.0)
    for station_id, holding in kept.items():
        targets[station_id] = Target(default=holding, tx=holding)
    for d in active:
        if d.weight * d.min_current <= left:
            alloc[d.station_id] = d.min_current
            left -= d.weight * d.min_current
    for priority in sorted({d.priority for d in active}, reverse=True):
        tier = [d for d in active if d.priority == priority and alloc[d.station_id] > 0 and d.cap > alloc[d.station_id]]
        left = _fill(tier, alloc, max(0.0, left))
    for d in active:
        tx = alloc[d.station_id]
        targets[d.station_id] = Target(default=tx, tx=tx)
    idle = [d for d in demands if not d.charging and not d.counted_at_max]
    weight = sum(d.weight for d in idle)
    share = max(0.0, left) / weight if weight else 0.0
    for d in idle:
        targets[d.station_id] = Target(
            default=floor_step(min(failsafe.get(d.station_id, 0.0), share, d.max_current)), tx=None
        )
    level = max(alloc.values(), default=0.0)
    for d in demands:
        if d.counted_at_max:  # any ask up to its max is safe (it is counted at max): the share the others got
            fallback = floor_step(min(failsafe.get(d.station_id, 0.0), share, d.max_current))
            ask = floor_step(min(d.cap, max(level, d.min_current))) if d.charging else None
            targets[d.station_id] = Target(default=fallback if ask is None else ask, tx=ask)
    return targets
