"""Where a station handshake's time goes, phase by phase (``csms_handshake_phase_seconds{phase}``).

A reconnect storm is served at (handshake slots) / (time a slot is held): which phase holds a slot longest
(waiting for the slot, credential checks, the etcd claim, the Postgres fence, the upgrade) is what to shorten.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

PhaseRecorder = Callable[[str, float], None]


class HandshakePhases:
    """Times named phases and hands each duration to ``record`` (none: timing is skipped)."""

    def __init__(self, record: PhaseRecorder | None = None) -> None:
        self._record = record

    def start(self, name: str) -> Callable[[], None]:
        """Start timing ``name`` now; call the result when the phase ends."""
        record = self._record
        if record is None:
            return _nothing
        started = time.perf_counter()
        return lambda: record(name, time.perf_counter() - started)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        done = self.start(name)
        try:
            yield
        finally:
            done()


def _nothing() -> None:
    pass
