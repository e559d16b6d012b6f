"""Watches the dev cluster's replicas: says when one exits (code and last log lines) and restarts it by policy.

A dev cluster that silently loses a replica misleads whoever is testing against it; this makes every exit
visible on the console, and `--restart` brings the replica back on the same ports (the balancers keep
pointing at them) with a growing pause, so a replica that crashes at start-up does not spin.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import trio

from devcluster.replica import ReplicaProcess

POLICIES = ("never", "on-failure", "always")


@dataclass
class Supervisor:
    replicas: Sequence[ReplicaProcess]
    policy: str = "never"
    say: Callable[[str], None] = print
    first_pause: float = 1.0
    max_pause: float = 30.0
    restarts: dict[str, int] = field(default_factory=dict)
    exits: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"restart policy must be one of {', '.join(POLICIES)}")

    def _should_restart(self, code: int) -> bool:
        return self.policy == "always" or (self.policy == "on-failure" and code != 0)

    async def run(self) -> None:
        """Until cancelled: one watcher per replica."""
        async with trio.open_nursery() as nursery:
            for replica in self.replicas:
                nursery.start_soon(self._watch, replica)

    async def _watch(self, replica: ReplicaProcess) -> None:
        pause = self.first_pause
        while True:
            code = await _exit_code(replica)
            self.exits.append((replica.node_id, code))
            tail = "\n".join("    " + line for line in replica.log_tail(10).splitlines())
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
            self.say(f"\n{replica.node_id} {how}; last log lines ({replica.log_path}):\n{tail}")
            if not self._should_restart(code):
                self.say(f"{replica.node_id} stays down (restart policy {self.policy}; try --restart on-failure)")
                return
            self.say(f"{replica.node_id}: restarting in {pause:.0f} s (restart policy {self.policy})")
            await trio.sleep(pause)
            replica.start()
            self.restarts[replica.node_id] = self.restarts.get(replica.node_id, 0) + 1
            with trio.move_on_after(60):
                await _exit_code(replica)
            # A replica that stayed up a minute starts over with a short pause; one that keeps dying waits longer.
            pause = self.first_pause if replica.running else min(pause * 2, self.max_pause)


async def _exit_code(replica: ReplicaProcess) -> int:
    """Waits for the process in a thread (abandoned on cancellation: the launcher reaps the replicas itself)."""
    proc = replica.proc
    assert proc is not None
    return await trio.to_thread.run_sync(proc.wait, abandon_on_cancel=True)
