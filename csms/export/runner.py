"""One exporter: outbox -> sink, from the sink's durable cursor, while this replica holds the sink's lease.

At-least-once, nothing skipped: the cursor moves only after the sink acknowledged the batch, so a replica that
dies mid-batch leaves the cursor before it and its successor sends the batch again (JetStream drops those
re-publishes by message id; webhook receivers dedupe by event id).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from csms.export.sink import CloudEvent, DeliveryFailed, Sink
from csms.outbox import Cursor, ExportStore, OutboxReader, cloud_event
from csms.storage import StorageError

log = logging.getLogger(__name__)

_RETRY_PAUSE = (0.2, 0.5, 1.0, 2.0, 5.0)


class ExportObserver(Protocol):
    def active(self, sink: str, holding: bool) -> None: ...
    def exported(self, sink: str, count: int, lag_seconds: float) -> None: ...
    def failed(self, sink: str) -> None: ...


class NullExportObserver:
    def active(self, sink: str, holding: bool) -> None:
        pass

    def exported(self, sink: str, count: int, lag_seconds: float) -> None:
        pass

    def failed(self, sink: str) -> None:
        pass


class Exporter:
    def __init__(
        self,
        sink: Sink,
        reader: OutboxReader,
        store: ExportStore,
        *,
        batch: int = 500,
        poll_interval: float = 0.1,
        replay: Callable[[list[CloudEvent]], Awaitable[None]] | None = None,
        observer: ExportObserver | None = None,
    ) -> None:
        self.sink = sink
        self._reader = reader
        self._store = store
        self._batch = batch
        self._poll = poll_interval
        self._replay = replay
        self._observer: ExportObserver = observer or NullExportObserver()

    async def run(self) -> None:
        """Export until cancelled (the lease was lost or the replica stops); storage and sink errors pause it."""
        name = self.sink.name
        self._observer.active(name, True)
        failures = 0
        try:
            cursor = await self._with_retries(lambda: self._store.cursor(name))
            log.info("exporter active", extra={"sink": name, "cursor": str(cursor)})
            while True:
                try:
                    if self._replay is not None:
                        await self._replay_requested()
                    cursor, count = await self._step(cursor)
                    failures = 0
                except (DeliveryFailed, StorageError) as exc:
                    self._observer.failed(name)
                    failures += 1
                    if failures == 1:
                        log.warning("export paused", extra={"sink": name, "error": str(exc)})
                    await trio.sleep(_RETRY_PAUSE[min(failures, len(_RETRY_PAUSE)) - 1])
                    continue
                if count < self._batch:
                    await trio.sleep(self._poll)
        finally:
            self._observer.active(name, False)

    async def _step(self, cursor: Cursor) -> tuple[Cursor, int]:
        rows = await self._reader.rows(cursor, limit=self._batch)
        if not rows:
            self._observer.exported(self.sink.name, 0, 0.0)
            return cursor, 0
        await self.sink.deliver([cloud_event(row, self._reader.source) for row in rows])
        last = rows[-1]
        after = Cursor(int(last["txid"]), last["seq"])
        await self._store.advance(self.sink.name, after, len(rows))
        self._observer.exported(self.sink.name, len(rows), max(0.0, time.time() - last["occurred_at"].timestamp()))
        return after, len(rows)

    async def _replay_requested(self) -> None:
        assert self._replay is not None
        letters = await self._store.replays(self.sink.name, self._batch)
        if letters:
            await self._replay([row["event"] for row in letters])
            await self._store.replayed([row["id"] for row in letters])

    @staticmethod
    async def _with_retries(fn: Callable[[], Awaitable[Cursor]]) -> Cursor:
        for pause in (*_RETRY_PAUSE, None):
            try:
                return await fn()
            except StorageError:
                if pause is None:
                    raise
                await trio.sleep(pause)
        raise AssertionError("unreachable")
