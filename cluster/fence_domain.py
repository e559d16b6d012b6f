"""The fence domain: a random name for this etcd's revision space, and its epoch (see ``EpochSource``).

The domain key has no lease. An etcd rebuilt from empty has none, gets a new one, and so a new fence epoch:
claims are ordered by (epoch, revision), so its restarted revisions still order after every older claim.
"""

from __future__ import annotations

import uuid

from cluster.contract import EpochSource
from cluster.errors import EtcdError, EtcdUnavailable
from cluster.etcd_client import EtcdClient
from cluster.txn import Compare, Op


class FenceDomain:
    def __init__(self, etcd: EtcdClient, key: str, epochs: EpochSource) -> None:
        self._etcd = etcd
        self._key = key
        self._epochs = epochs
        self._epoch_of_domain: dict[str, int] = {}

    async def ensure(self) -> None:
        """Agree with the other nodes on this etcd's fence domain, and know its epoch.

        If another domain was seen since ours (a single node served this database meanwhile), ours starts
        afresh too, or its claims would be older than that node's.
        """
        key = self._key
        for _ in range(5):
            kv = (await self._etcd.get(key)).first()
            if kv is not None:
                domain = kv.value.decode(errors="replace")
                epoch, newest = await self._epochs.fence_epoch(domain)
                if newest:
                    self._epoch_of_domain[domain] = epoch
                    return
            guard = Compare.mod_revision(key, "=", kv.mod_revision) if kv else Compare.create_revision(key, "=", 0)
            await self._etcd.txn([guard], [Op.put(key, f"etcd:{uuid.uuid4().hex}")])  # lost a race: read again
        raise EtcdError("could not agree on a fence domain in 5 tries")

    async def epoch(self, domain: str) -> int:
        """The epoch of ``domain`` (read with a claim's put)."""
        if not domain:  # someone deleted the domain key: start a new domain; this claim fails, the next works
            await self.ensure()
            raise EtcdUnavailable("the fence domain key was missing from etcd")
        epoch = self._epoch_of_domain.get(domain)
        if epoch is None:
            epoch, _ = await self._epochs.fence_epoch(domain)
            self._epoch_of_domain[domain] = epoch
        return epoch
