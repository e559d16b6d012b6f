"""Run singleton jobs only on the leader, cancelling them the moment leadership is lost."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import trio

from cluster.contract import Coordinator

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


def every(interval: float, fn: Job) -> Job:
    """Turn a one-shot ``fn`` into a job that runs it every ``interval`` seconds while leader."""

    async def periodic() -> None:
        while True:
            await fn()
            await trio.sleep(interval)

    periodic.__name__ = getattr(fn, "__name__", "periodic")
    return periodic


class LeaderJobRunner:
    """Starts all jobs when this node becomes leader and cancels them when it stops being leader.

    A job that raises is logged and restarted after ``restart_delay`` (still only while leader);
    a job that returns is done for the current term.
    """

    def __init__(self, coordinator: Coordinator, jobs: Sequence[Job] = (), *, restart_delay: float = 1.0):
        self._coordinator = coordinator
        self._jobs = list(jobs)
        self._restart_delay = restart_delay
        self.terms = 0

    def add(self, job: Job) -> None:
        self._jobs.append(job)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._coordinator.wait_leadership()
            self.terms += 1
            async with trio.open_nursery() as nursery:
                for job in self._jobs:
                    nursery.start_soon(self._supervise, job)
                await self._coordinator.wait_leadership_lost()
                nursery.cancel_scope.cancel()

    async def _supervise(self, job: Job) -> None:
        while True:
            try:
                await job()
                return
            except Exception as exc:
                # One line (e.g. while Postgres is down, every job fails each round); the traceback at debug level.
                name = getattr(job, "__name__", job)
                log.warning("leader job %s failed; restarting: %r", name, exc)
                log.debug("leader job %s failure", name, exc_info=True)
            await trio.sleep(self._restart_delay)
