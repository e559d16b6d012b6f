"""Leased singletons per key: each named unit of work runs on exactly one node at a time, moved on failure.

Each name is a key bound to the holder's node lease (``Coordinator.hold_keys``). When the holder dies its lease
expires and the key goes with it; every other node watches the group's keys (``Coordinator.watch_released``)
and polls at once, so one takes it and starts the work there (a poll every ``interval`` also catches what a
watch missed). A node that loses its lease stops all its work at once (before etcd lets anyone else take the
keys: the coordinator declares the lease lost a margin before it expires). ``exclusive`` is the one-job form
(the exporters): one key in a group of its own, one job, the same guarantees. Work must still tolerate a short
overlap with a deposed holder (a paused process); the CSMS's exporters do, by message ids and a cursor that
never moves back.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Sequence

import trio

from cluster.contract import Coordinator
from cluster.errors import EtcdError

log = logging.getLogger(__name__)

Work = Callable[[str], Awaitable[None]]
Job = Callable[[], Awaitable[None]]
Wanted = Callable[[], Awaitable[Sequence[str]]]


class LeasedSingletons:
    """Runs ``work(name)`` for every name of ``wanted()`` whose key this node holds, cancelled when it no longer
    does. ``work`` should run until cancelled; one that returns or raises is restarted on the next poll."""

    def __init__(
        self,
        coordinator: Coordinator,
        group: str,
        wanted: Wanted,
        work: Work,
        *,
        interval: float = 1.0,
        spread: float = 0.05,
    ) -> None:
        self._coordinator = coordinator
        self._group = group
        self._wanted = wanted
        self._work = work
        self._interval = interval
        self._spread = spread  # seconds a node waits per key it holds before taking free ones: spreads the keys
        self._running: dict[str, trio.CancelScope] = {}
        self._poke = trio.Event()
        coordinator.on_lease_lost(self._stop_all)

    @classmethod
    async def exclusive(cls, coordinator: Coordinator, name: str, job: Job, *, interval: float = 1.0) -> None:
        """Until cancelled, run ``job`` while this node holds the key ``exclusive/{name}/holder``. A group of its
        own per job: a poll gives up the group's keys it no longer names, so jobs sharing one group (a node's
        NATS and webhook exporters) would release each other's keys and let another node start a running job."""

        async def wanted() -> list[str]:
            await trio.lowlevel.checkpoint()
            return ["holder"]

        async def work(_: str) -> None:
            await job()

        await cls(coordinator, f"exclusive/{name}", wanted, work, interval=interval).run()

    @property
    def held(self) -> list[str]:
        return sorted(self._running)

    def poke(self) -> None:
        """Poll now (a name was added)."""
        self._poke.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_releases)
            task_status.started()
            try:
                while True:
                    self._poke = trio.Event()  # before the poll: a key going while it runs polls again
                    try:
                        with trio.fail_after(max(self._interval * 3, 5.0)):
                            held = await self._poll()
                        self._apply(nursery, held)
                    except (EtcdError, trio.TooSlowError) as exc:
                        # Keep what runs: a lost lease stops it through the coordinator's hook.
                        log.debug("singletons %s: poll failed: %r", self._group, exc)
                    except Exception as exc:  # e.g. Postgres down: one line per interval, not a traceback
                        log.warning("singletons %s: poll failed: %r", self._group, exc)
                    with trio.move_on_after(self._interval):
                        await self._poke.wait()
            finally:
                self._stop_all()

    async def _watch_releases(self) -> None:
        """Poll at once when a key of the group goes; the periodic poll stays the fallback if the watch fails."""
        while True:
            try:
                await self._coordinator.watch_released(self._group, self.poke)
            except Exception as exc:
                log.debug("singletons %s: watch failed: %r", self._group, exc)
            await trio.sleep(self._interval)

    async def _poll(self) -> set[str]:
        names = list(await self._wanted())
        holders = await self._coordinator.key_holders(self._group)
        free = [name for name in names if name not in holders]
        if free and self._running:
            await trio.sleep(min(self._interval / 2, self._spread * len(self._running)))
        if free:
            # At most a fair share of new keys per poll, then poll again at once (after the spread delay above):
            # one node's first poll took every key before the others had polled once.
            share = -(-len(names) // max(1, len(await self._coordinator.nodes())))
            room = max(1, share - len(self._running))
            if room < len(free):
                taking = set(random.sample(free, room))
                names = [name for name in names if name not in free or name in taking]
                self._poke.set()
        return await self._coordinator.hold_keys(self._group, names)

    def _apply(self, nursery: trio.Nursery, held: set[str]) -> None:
        for name in [n for n in self._running if n not in held]:
            log.info("singleton %s/%s given up", self._group, name)
            self._running.pop(name).cancel()
        for name in sorted(held - self._running.keys()):
            scope = trio.CancelScope()
            self._running[name] = scope
            nursery.start_soon(self._supervise, name, scope)

    async def _supervise(self, name: str, scope: trio.CancelScope) -> None:
        log.info("singleton %s/%s taken by %s", self._group, name, self._coordinator.node_id)
        with scope:
            try:
                await self._work(name)
            except Exception:
                log.exception("singleton %s/%s failed; restarted on the next poll", self._group, name)
        if self._running.get(name) is scope:
            del self._running[name]

    def _stop_all(self) -> None:
        for scope in self._running.values():
            scope.cancel()
        self._running.clear()
