"""ConnectionFreezer: each period's survivors leave the collector's reach; churn and growth reclaim frozen garbage."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from csms.gc_tuning import ConnectionFreezer


class Conn:
    """Stands in for a connection's objects: a reference cycle, so only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self
        self.waiting = [object() for _ in range(5)]  # the await chain of its current receive


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    gc.collect()
    yield
    gc.unfreeze()


def test_replaced_objects_do_not_pile_up_in_the_young_generation() -> None:
    """Each message frees a connection's old await chain and keeps a new one: CPython 3.11's young count barely
    moves (every death lowers it), so without a young collection per period the young list grows with every
    live chain and the collection that finally comes walks them all (0.4-1.1 s at 19,000 stations)."""
    conns = [Conn() for _ in range(2000)]
    freezer = ConnectionFreezer(lambda: len(conns), lambda: 0, min_growth=100)
    freezer.step()
    for _ in range(5):
        for conn in conns:
            conn.waiting = [object() for _ in range(5)]  # one message each: old chain dies, new one kept
        freezer.step()
        assert len(gc.get_objects(0)) < 500  # was 2,000 more per round without the per-period step


def test_a_period_freezes_without_walking_and_a_reclaim_frees_its_garbage() -> None:
    conns = [Conn() for _ in range(10)]
    garbage = Conn()
    gone = weakref.ref(garbage)
    del garbage
    freezer = ConnectionFreezer(lambda: len(conns), lambda: 0, reclaim_growth=0.01, settle_periods=1)
    freezer.step()
    young = len(gc.get_objects(0))
    assert young < 10  # frozen, not walked
    assert gc.get_freeze_count() > 0
    assert gone() is not None  # the cycle went frozen too: it waits for a reclaim
    ballast = [[i] for i in range(50_000)]
    freezer.step()  # memory grew with no connect burst: reclaim
    assert gone() is None
    del ballast


def test_churn_reclaims_the_frozen_cycles() -> None:
    conns = [Conn() for _ in range(300)]
    closed = 0
    freezer = ConnectionFreezer(lambda: len(conns), lambda: closed, min_reclaim=100)
    freezer.step()
    gone = weakref.ref(conns[0])
    del conns[:200]
    gc.collect()
    assert gone() is not None  # a frozen cycle survives full collections: that is the point, and the leak
    closed = 200
    freezer.step()  # 200 closed >= half of the 300 frozen: reclaim
    assert gone() is None
    assert gc.get_freeze_count() > 0  # the survivors are frozen again


def test_growth_reclaims_once_the_connect_burst_has_settled() -> None:
    conns = [Conn() for _ in range(10)]
    freezer = ConnectionFreezer(lambda: len(conns), lambda: 0, reclaim_growth=0.01, settle_periods=1, min_growth=5)
    freezer.step()
    gone = weakref.ref(conns[0])
    del conns[0]
    conns.extend(Conn() for _ in range(20))  # a burst: memory grew, but so did the connections
    freezer.step()
    assert gone() is not None  # frozen garbage waits while connections arrive
    ballast = [[i] for i in range(200_000)]  # memory grows with no new connections: frozen cycles may be why
    freezer.step()
    assert gone() is None
    del ballast


def test_memory_that_grows_with_the_connections_is_no_reason_to_reclaim() -> None:
    conns: list[Conn] = []
    freezer = ConnectionFreezer(lambda: len(conns), lambda: 0, reclaim_growth=0.01, settle_periods=1)
    freezer.step()
    garbage = Conn()
    gone = weakref.ref(garbage)
    freezer.step()
    del garbage
    conns.extend(Conn() for _ in range(2000))
    ballast = [[i] for i in range(50_000)]  # their memory
    freezer.step()
    freezer.step()  # settled, memory grew, but 2,000 more connections explain it
    assert gone() is not None  # no full collection walked them
    del ballast
