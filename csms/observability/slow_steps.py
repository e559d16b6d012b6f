"""Who blocked the event loop: time each scheduler batch, and name the task a sampler saw holding a slow one.

A replica is one trio loop, so one step that runs long (a big loop over connections, a full garbage collection,
a synchronous call) delays every station at once. csms_event_loop_lag_seconds says *that* the loop stalled;
this says *which task* held it: a histogram by task name and at most one log line per ``log_every`` seconds.

Timing every task step (trio's ``before_task_step``/``after_task_step`` hooks) cost ~3.5 % of a busy
replica's Python CPU, mostly trio's hook dispatch (py-spy --gil, benchmarks/profile_replica.py). So this times
scheduler batches instead: two hooks per batch of hundreds of steps, and a batch shorter than the threshold
cannot hold a step that long. Which step of a slow batch held the loop comes from a sampler thread that, while a
batch has been running ``sample_every`` or longer, reads the trio thread's stack and notes the task on top
(trio runs each task at most once per batch, so one task seen at several samples is one long step). A step
is reported when the time between the samples around it (the batch's edges at the ends) reaches the
threshold: an upper bound, a sampling period or two above the step itself (more if the OS keeps the sampler
waiting, which can name a busy batch's task that was not slow itself). The name is the task's
function (module and qualified name), as trio names a task unless told otherwise. The sampler wakes every half
threshold while batches are short: ~0.2 % of a core on an idle replica (`bench_loop_instrument.py` for busy).
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass
from time import perf_counter
from types import FrameType
from typing import Protocol

import trio

log = logging.getLogger(__name__)

_UNKNOWN = "unknown"  # the sampler thread did not run while the loop was held


class ObservesSteps(Protocol):
    def observe(self, task_name: str, seconds: float) -> None: ...


@dataclass(slots=True)
class _Sighting:
    frame: int  # id() of the task's outermost coroutine frame: two tasks of one function differ
    name: str
    first: float
    last: float


def _running_task(frame: FrameType | None) -> tuple[int, str] | None:
    """The outermost coroutine frame under trio's scheduler on this stack, as (id, module.qualname)."""
    while frame is not None:
        caller = frame.f_back
        if caller is not None and caller.f_code.co_name == "unrolled_run":
            module = frame.f_globals.get("__name__", "?")
            return id(frame), f"{module}.{frame.f_code.co_qualname}"
        frame = caller
    return None


class SlowSteps(trio.abc.Instrument):
    """Reports task steps of ``threshold`` seconds or more to ``observer`` and, rate-limited, to the log.

    Add it from the trio thread; trio's ``after_run`` stops the sampler (``close()`` does too).
    """

    def __init__(
        self, threshold: float, observer: ObservesSteps, *, log_every: float = 10.0, sample_every: float | None = None
    ) -> None:
        self._threshold = threshold
        self._observer = observer
        self._log_every = log_every
        self._sample_every = sample_every if sample_every is not None else min(0.01, threshold / 5)
        self._logged_at = -log_every
        self._unlogged = 0
        self._loop_thread = threading.get_ident()
        self._batch = 0  # counts batches; the sampler's sightings belong to one
        self._batch_started: float | None = perf_counter()  # the batch that adds us is timed from here
        self._lock = threading.Lock()
        self._sightings: list[_Sighting] = []
        self._sightings_batch = -1
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="csms-slow-steps", daemon=True)
        self._sampler.start()

    def close(self) -> None:
        self._stop.set()

    def after_run(self) -> None:
        self.close()

    def after_io_wait(self, timeout: float) -> None:
        self._batch += 1
        self._batch_started = perf_counter()

    def before_io_wait(self, timeout: float) -> None:
        started, ended = self._batch_started, perf_counter()
        self._batch_started = None
        if started is None or ended - started < self._threshold:
            return
        with self._lock:
            sightings = self._sightings if self._sightings_batch == self._batch else []
            self._sightings = []
        for name, seconds in self._steps(sightings, started, ended):
            self._report(name, seconds)

    def _steps(self, sightings: list[_Sighting], started: float, ended: float) -> list[tuple[str, float]]:
        """Each sighted step's upper bound: from the previous sighting (or the batch's start) to the next one
        (or the batch's end); those of ``threshold`` or more. No sighting at all: the whole batch, unnamed."""
        if not sightings:
            return [(_UNKNOWN, ended - started)]
        slow = []
        for i, seen in enumerate(sightings):
            after = sightings[i - 1].last if i else started
            before = sightings[i + 1].first if i + 1 < len(sightings) else ended
            if before - after >= self._threshold:
                slow.append((seen.name, before - after))
        return slow

    def _report(self, name: str, seconds: float) -> None:
        self._observer.observe(name, seconds)
        now = perf_counter()
        if now - self._logged_at < self._log_every:
            self._unlogged += 1
            return
        log.warning(
            "a task step blocked the event loop",
            extra={"task": name, "seconds": round(seconds, 3), "not_logged_since": self._unlogged},
        )
        self._logged_at, self._unlogged = now, 0

    def _sample(self) -> None:
        """Sampler thread: while a batch runs long, note every ``sample_every`` which task is on the trio thread's
        stack; otherwise look again only every half threshold (a slower step still gets sampled: waking the
        thread costs a GIL handover, and 100 a second took ~1 % of a core from an idle replica)."""
        pause = self._threshold / 2
        while not self._stop.wait(pause):
            started, batch = self._batch_started, self._batch
            if started is None or perf_counter() - started < self._sample_every:
                pause = self._threshold / 2
                continue
            pause = self._sample_every
            running = _running_task(sys._current_frames().get(self._loop_thread))
            if running is None:
                continue
            now = perf_counter()
            with self._lock:
                if self._sightings_batch != batch:
                    self._sightings, self._sightings_batch = [], batch
                last = self._sightings[-1] if self._sightings else None
                if last is not None and last.frame == running[0]:
                    last.last = now
                else:
                    self._sightings.append(_Sighting(running[0], running[1], now, now))
