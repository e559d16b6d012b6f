"""Owner-key deletes of released claims ride in one guarded etcd txn (a storm of closing connections is
thousands of releases; one txn each once left etcd refusing connections).

Each delete is guarded on the key's mod revision (the claim's): if every guard holds, every key goes in one txn.
If any fails, nothing is deleted and the failure branch reads every key at the same revision: a key whose
guard failed is no longer ours (nothing to delete, done); an innocent one (its guard held) is sent again in the
next txn. Queueing, one key per txn and back-pressure are ``microbatch.MicroBatcher``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import outcome
import trio

from cluster.errors import EtcdError
from cluster.etcd_client import EtcdClient
from cluster.results import RangeResult
from cluster.txn import Compare, Op
from microbatch import RETRY, Answer, MicroBatcher


@dataclass(frozen=True, slots=True)
class OwnerDelete:
    """Delete ``key`` only if its mod revision is still ``revision`` (our claim's)."""

    key: str
    revision: int


class OwnerDeleteBatcher:
    """Batches guarded owner-key deletes; ``delete`` raises ``microbatch.BatcherClosed`` once stopped."""

    def __init__(self, etcd: EtcdClient, *, max_batch: int) -> None:
        self._etcd = etcd
        self._batcher: MicroBatcher[OwnerDelete, None] = MicroBatcher(
            self._send, max_batch=max_batch, max_queued=4 * max_batch, key=lambda d: d.key
        )

    @property
    def running(self) -> bool:
        return self._batcher.running

    async def delete(self, key: str, revision: int) -> None:
        await self._batcher.submit(OwnerDelete(key, revision))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self._batcher.run(task_status=task_status)

    def abort(self) -> None:
        self._batcher.abort()

    async def _send(self, batch: list[OwnerDelete]) -> list[Answer[None]]:
        try:
            result = await self._etcd.txn(
                [Compare.mod_revision(d.key, "=", d.revision) for d in batch],
                [Op.delete(d.key) for d in batch],
                [Op.get(d.key) for d in batch],
            )
        except EtcdError as exc:
            return [outcome.Error(exc) for _ in batch]
        if result.succeeded:
            return [outcome.Value(None) for _ in batch]
        answers: list[Answer[None]] = []
        for delete, response in zip(batch, result.responses, strict=True):
            assert isinstance(response, RangeResult)
            kv = response.first()
            innocent = kv is not None and kv.mod_revision == delete.revision
            answers.append(RETRY if innocent else outcome.Value(None))
        return answers
