"""Station ownership for a new connection: claim it in the cluster, record the claim's fence in Postgres.

The newest connection wins, here and across replicas; the fence token recorded with the claim is what every
write of the connection carries, so a newer claim anywhere stops this connection's writes.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

import trio

from cluster import Claim, Coordinator
from csms.stations.handshake_phases import HandshakePhases
from csms.stations.registry import StationRegistry
from csms.storage import Fence

log = logging.getLogger(__name__)

# Records a claim in Postgres: the station's fence token for this connection's writes, None if a newer claim is.
FenceRecorder = Callable[[Claim], Awaitable[int | None]]


class Ownership:
    def __init__(
        self,
        coordinator: Coordinator,
        record_fence: FenceRecorder,
        registry: StationRegistry,
        timeout: float,
        phases: HandshakePhases | None = None,
    ) -> None:
        self._coordinator = coordinator
        self._phases = phases or HandshakePhases()
        self._record_fence = record_fence
        self._registry = registry
        self._timeout = timeout

    async def take(self, station_id: str, protocol: str, recorded: str | None = None) -> tuple[Claim, int]:
        """Claim the station for a new connection and record it; on any failure nothing of it stays owned.

        ``recorded``: the protocol the handshake read for the station; the same one is not written again (a
        reconnect storm is thousands of reconnects in the same version, and each write is a group-commit wait
        while holding a handshake slot). Only a concurrent connect of the station in another version can make
        the row differ meanwhile; a command built for that version is refused by the owner (ProtocolChanged)
        and the station's next connect in this version records it again."""
        claim: Claim | None = None
        try:
            with trio.fail_after(self._timeout):
                with self._phases.phase("claim"):
                    claim = await self._coordinator.claim(station_id, secrets.token_hex(6))
                with self._phases.phase("fence"):
                    fence = await self._record_fence(claim)
                if fence is None:
                    raise RuntimeError("a newer claim is already recorded")
                if protocol != recorded:
                    with self._phases.phase("protocol"):
                        await self._registry.record_protocol(Fence(station_id, fence), protocol)
        except Exception:
            await self.release_quietly(claim)
            raise
        return claim, fence

    async def release_quietly(self, claim: Claim | None) -> None:
        """Compare-and-delete our owner key, bounded and shielded: it runs while a connection unwinds."""
        if claim is None:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            try:
                await self._coordinator.release(claim)
            except Exception as exc:
                log.warning("release failed", extra={"station_id": claim.station_id, "error": repr(exc)})
