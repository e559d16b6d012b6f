"""A trio-native etcd v3 client over the JSON gateway (httpx), covering what the cluster needs.

async with EtcdClient(["http://127.0.0.1:2379"]) as etcd:
    await etcd.put("/a", "1")
    async with etcd.watch("/a", prefix=True) as events:
        async for event in events: ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from cluster.codec import Bytesish, as_int, header_revision, to_bytes, unb64
from cluster.errors import EtcdError, EtcdLeaseNotFound
from cluster.results import DeleteResult, Lease, LeaseTimeToLive, PutResult, RangeResult, TxnResult
from cluster.transport import RequestHook, Transport, error_from_body, make_ssl_context
from cluster.txn import Compare, Op, delete_body, put_body, range_body
from cluster.watch import Watch


class EtcdClient:
    """etcd KV, txn, lease and watch calls.

    Each call is bounded by ``timeout`` seconds (across all endpoints); wrap a call in a tighter trio
    cancel scope for a shorter deadline, which the endpoint failover also respects.
    """

    def __init__(
        self,
        endpoints: list[str],
        *,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        timeout: float = 2.0,
        on_request: RequestHook | None = None,
    ) -> None:
        tls = ca_file or cert_file or any(e.startswith("https://") for e in endpoints)
        self._username = username
        self._password = password
        self._transport = Transport(
            endpoints,
            timeout=timeout,
            ssl_context=make_ssl_context(ca_file, cert_file, key_file) if tls else None,
            on_request=on_request,
        )
        if username is not None:
            self._transport.reauthenticate = self.authenticate

    @property
    def endpoints(self) -> list[str]:
        return list(self._transport.endpoints)

    @property
    def timeout(self) -> float:
        return self._transport.timeout

    async def __aenter__(self) -> EtcdClient:
        if self._username is not None:
            try:
                await self.authenticate()
            except BaseException:
                await self.aclose()
                raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def authenticate(self) -> None:
        """Fetch a fresh auth token (also done automatically when etcd says the old one expired)."""
        self._transport.token = None
        body = await self._transport.post(
            "/v3/auth/authenticate", {"name": self._username, "password": self._password or ""}
        )
        token = body.get("token")
        if not token:
            raise EtcdError("etcd authenticate: no token in answer")
        self._transport.token = str(token)

    # -- KV ---------------------------------------------------------------------------------------

    async def get(
        self,
        key: Bytesish,
        *,
        prefix: bool = False,
        range_end: Bytesish | None = None,
        revision: int | None = None,
        keys_only: bool = False,
        count_only: bool = False,
        limit: int | None = None,
        serializable: bool = False,
    ) -> RangeResult:
        body = range_body(
            key,
            prefix=prefix,
            range_end=range_end,
            revision=revision,
            keys_only=keys_only,
            count_only=count_only,
            limit=limit,
            serializable=serializable,
        )
        return await self._transport.post_as("/v3/kv/range", body, RangeResult.from_json)

    range = get

    async def put(
        self,
        key: Bytesish,
        value: Bytesish,
        *,
        lease: int = 0,
        prev_kv: bool = False,
    ) -> PutResult:
        body = put_body(key, value, lease=lease, prev_kv=prev_kv)
        answer = await self._transport.post("/v3/kv/put", body, idempotent=False)
        return PutResult.from_json(answer)

    async def delete(
        self,
        key: Bytesish,
        *,
        prefix: bool = False,
        range_end: Bytesish | None = None,
        prev_kv: bool = False,
    ) -> DeleteResult:
        body = delete_body(key, prefix=prefix, range_end=range_end, prev_kv=prev_kv)
        answer = await self._transport.post("/v3/kv/deleterange", body, idempotent=False)
        return DeleteResult.from_json(answer)

    async def txn(
        self,
        compare: Sequence[Compare],
        success: Sequence[Op] = (),
        failure: Sequence[Op] = (),
    ) -> TxnResult:
        body: dict[str, Any] = {
            "compare": [c.to_json() for c in compare],
            "success": [op.body for op in success],
            "failure": [op.body for op in failure],
        }
        readonly = all("request_range" in op.body for op in (*success, *failure))
        return await self._transport.post_as("/v3/kv/txn", body, TxnResult.from_json, idempotent=readonly)

    async def compact(self, revision: int, *, physical: bool = False) -> None:
        body: dict[str, Any] = {"revision": str(revision), "physical": physical}
        await self._transport.post("/v3/kv/compaction", body)

    async def status(self) -> dict[str, Any]:
        """The answering member's status (version, leader, revision): a cheap health probe."""
        body = await self._transport.post("/v3/maintenance/status", {})
        return {
            "version": body.get("version", ""),
            "leader": as_int(body.get("leader")),
            "member_id": as_int(body.get("header", {}).get("member_id")),
            "revision": header_revision(body),
        }

    # -- leases -----------------------------------------------------------------------------------

    async def lease_grant(self, ttl: float) -> Lease:
        seconds = max(1, round(ttl))
        body = await self._transport.post("/v3/lease/grant", {"TTL": str(seconds)}, idempotent=False)
        if body.get("error"):
            raise EtcdError(f"lease grant: {body['error']}")
        return Lease(id=as_int(body.get("ID")), ttl=as_int(body.get("TTL")))

    async def lease_keepalive(self, lease_id: int) -> int:
        """Renew once; returns the new TTL. Raises EtcdLeaseNotFound if the lease already expired."""
        body = await self._transport.post("/v3/lease/keepalive", {"ID": str(lease_id)})
        if "error" in body:
            raise error_from_body(body, 200)
        ttl = as_int(body.get("result", body).get("TTL"))
        if ttl <= 0:
            raise EtcdLeaseNotFound(f"lease {lease_id:x} not found", code=5)
        return ttl

    async def lease_revoke(self, lease_id: int) -> None:
        await self._transport.post("/v3/lease/revoke", {"ID": str(lease_id)})

    async def lease_time_to_live(self, lease_id: int, *, keys: bool = False) -> LeaseTimeToLive:
        body = await self._transport.post("/v3/lease/timetolive", {"ID": str(lease_id), "keys": keys})
        return LeaseTimeToLive(
            id=as_int(body.get("ID")),
            ttl=as_int(body.get("TTL")),
            granted_ttl=as_int(body.get("grantedTTL")),
            keys=[unb64(k) for k in body.get("keys", [])],
        )

    # -- watch ------------------------------------------------------------------------------------

    @asynccontextmanager
    async def watch(
        self,
        key: Bytesish,
        *,
        prefix: bool = False,
        start_revision: int | None = None,
        prev_kv: bool = False,
    ) -> AsyncIterator[Watch]:
        """Watch a key (or prefix). The stream is confirmed by etcd before the body runs."""
        watch = Watch(self._transport, to_bytes(key), prefix=prefix, start_revision=start_revision, prev_kv=prev_kv)
        await watch.open()
        try:
            yield watch
        finally:
            await watch.aclose()


__all__ = ["EtcdClient"]
