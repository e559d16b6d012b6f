"""Owner-key puts of concurrent claims ride in one guarded etcd txn (a reconnect storm is thousands of claims).

All guards go in one txn: if every one holds, every put lands at the txn's revision (each claim's revision),
read together with the fence domain. If any fails, nothing is written and the failure branch reads every key at
the same revision, so each put learns exactly whether its own guard held: those whose guard held are simply
re-sent in the next txn, the others return the key they saw to their claimer. The queueing is
``microbatch.MicroBatcher``'s: one txn at a time, one put per key per txn (etcd refuses duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass

import outcome
import trio

from cluster.errors import EtcdError, EtcdUnavailable
from cluster.etcd_client import EtcdClient
from cluster.results import KeyValue, RangeResult
from cluster.txn import Compare, Op
from microbatch import RETRY, Answer, BatcherClosed, MicroBatcher


@dataclass(frozen=True, slots=True)
class OwnerPut:
    """One station's guarded owner-key put.

    ``expected`` is the guard: the key's mod revision it must still have (0: the key must be absent); with
    ``mine`` the key must instead hold exactly ``value`` (our own claim, whatever its revision: re-claiming
    after a rejoin).
    """

    key: str
    value: bytes
    expected: int
    mine: bool = False

    def guard(self) -> Compare:
        if self.mine:
            return Compare.value(self.key, "=", self.value)
        if self.expected == 0:
            return Compare.create_revision(self.key, "=", 0)
        return Compare.mod_revision(self.key, "=", self.expected)

    def holds(self, kv: KeyValue | None) -> bool:
        if self.mine:
            return kv is not None and kv.value == self.value
        return (kv.mod_revision if kv is not None else 0) == self.expected


@dataclass(frozen=True, slots=True)
class PutOutcome:
    """Exact per station: ``revision`` (and the ``domain`` read with it) when the put landed, else ``current``
    (the key as read atomically with the failed compare, None if absent) so the claimer can retry on it."""

    revision: int = 0
    domain: str = ""
    current: KeyValue | None = None


def _session_ended(put: OwnerPut, sent: bool) -> outcome.Outcome[PutOutcome]:
    return outcome.Error(EtcdUnavailable("cluster session ended while claiming"))


class OwnerPutBatcher:
    """Batches the owner puts of one lease (one node session); ``abort()`` it when the session ends."""

    def __init__(self, etcd: EtcdClient, lease: int, domain_key: str, *, max_batch: int) -> None:
        self.lease = lease
        self._etcd = etcd
        self._domain_key = domain_key
        # Bounded: one txn in flight and a few ready keep it busy; more claims wait for room (within their
        # caller's deadline) instead of growing a list every batch scans.
        self._batcher: MicroBatcher[OwnerPut, PutOutcome] = MicroBatcher(
            self._send, max_batch=max_batch, max_queued=4 * max_batch, key=lambda put: put.key, stopped=_session_ended
        )

    @property
    def queued(self) -> int:
        return self._batcher.queued

    async def put(self, put: OwnerPut) -> PutOutcome:
        """Queue ``put`` and wait for its own outcome. A cancelled caller's put is dropped if not sent yet;
        once sent it may land, as any txn may."""
        try:
            return await self._batcher.submit(put)
        except BatcherClosed:
            raise EtcdUnavailable("lease lost while claiming") from None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self._batcher.run(task_status=task_status)

    def abort(self) -> None:
        self._batcher.abort()

    async def _send(self, batch: list[OwnerPut]) -> list[Answer[PutOutcome]]:
        try:
            result = await self._etcd.txn(
                [p.guard() for p in batch],
                [*(Op.put(p.key, p.value, lease=self.lease) for p in batch), Op.get(self._domain_key)],
                [Op.get(p.key) for p in batch],
            )
        except EtcdError as exc:
            return [outcome.Error(exc) for _ in batch]
        if result.succeeded:
            domain = result.responses[-1]
            assert isinstance(domain, RangeResult)
            kv = domain.first()
            landed = PutOutcome(result.revision, kv.value.decode(errors="replace") if kv is not None else "")
            return [outcome.Value(landed) for _ in batch]
        answers: list[Answer[PutOutcome]] = []
        for put, response in zip(batch, result.responses, strict=True):
            assert isinstance(response, RangeResult)
            kv = response.first()
            # Innocent (another key in the txn failed its guard): sent again, at the head of the queue.
            answers.append(RETRY if put.holds(kv) else outcome.Value(PutOutcome(current=kv)))
        return answers
