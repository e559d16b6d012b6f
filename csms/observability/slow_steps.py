"""Who blocked the event loop: a trio Instrument that times every task step and reports the long ones.

A replica is one trio loop, so one step that runs long (a big loop over connections, a full garbage collection,
a synchronous call) delays every station at once. csms_event_loop_lag_seconds says *that* the loop stalled;
this says *which task* held it: a counter and a histogram by task name (trio names a task after its function,
so the label set stays small) and at most one log line per ``log_every`` seconds. Timing a step costs two
``perf_counter`` calls, well under 1 % of a busy replica's CPU.
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Protocol

import trio

log = logging.getLogger(__name__)


class ObservesSteps(Protocol):
    def observe(self, task_name: str, seconds: float) -> None: ...


class SlowSteps(trio.abc.Instrument):
    """Reports task steps of ``threshold`` seconds or more to ``observer`` and, rate-limited, to the log."""

    def __init__(self, threshold: float, observer: ObservesSteps, *, log_every: float = 10.0) -> None:
        self._threshold = threshold
        self._observer = observer
        self._log_every = log_every
        self._started = perf_counter()  # the step that adds us is timed from here, not from 0
        self._logged_at = -log_every
        self._unlogged = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._started = perf_counter()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        took = perf_counter() - self._started
        if took < self._threshold:
            return
        self._observer.observe(task.name, took)
        now = perf_counter()
        if now - self._logged_at < self._log_every:
            self._unlogged += 1
            return
        log.warning(
            "a task step blocked the event loop",
            extra={"task": task.name, "seconds": round(took, 3), "not_logged_since": self._unlogged},
        )
        self._logged_at, self._unlogged = now, 0
