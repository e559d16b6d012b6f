"""Garbage-collector settings for a long-running replica with many connections."""

from __future__ import annotations

import gc

GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Keep CPython's cyclic GC from rescanning every connection's objects over and over.

    With the default thresholds (a young collection every 700 allocations) the objects of a message that lives
    a few milliseconds survive into the old generation, and the frequent full collections that follow walk
    every object of every connected station: 39 % of the replica's CPU while 8,000 stations connected
    (py-spy --native, benchmarks/profile_replica.py). Young collections every 50,000 allocations let most
    of those objects die young, and freezing what start-up built (schemas, modules) takes it out of every
    full collection. Only cyclic garbage waits longer for the collector; reference counting frees the rest.
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, GC_YOUNG_THRESHOLD), middle, old)
