"""ConnectionFreezer: settled connections' objects leave the collector's reach; heavy churn reclaims them."""

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


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_growth_freezes_and_churn_reclaims_the_frozen_cycles() -> None:
    conns = [Conn() for _ in range(300)]
    closed = 0
    freezer = ConnectionFreezer(lambda: len(conns), lambda: closed, min_growth=100, min_reclaim=100)

    freezer.step()
    assert gc.get_freeze_count() == 0  # 300 new connections this period: the burst goes on, wait
    freezer.step()
    assert gc.get_freeze_count() > 0  # settled: frozen, out of every collection
    frozen = gc.get_freeze_count()
    freezer.step()
    assert gc.get_freeze_count() == frozen  # no growth, nothing new to freeze

    gone = weakref.ref(conns[0])
    del conns[:200]
    closed = 200
    gc.collect()
    assert gone() is not None  # a frozen cycle survives full collections: that is the point, and the leak
    freezer.step()  # 200 closed >= half of the 300 frozen: reclaim
    assert gone() is None
    assert gc.get_freeze_count() > 0  # the survivors are frozen again


def test_small_growth_waits() -> None:
    conns = [Conn() for _ in range(50)]
    freezer = ConnectionFreezer(lambda: len(conns), lambda: 0, min_growth=100)
    freezer.step()
    assert gc.get_freeze_count() == 0
