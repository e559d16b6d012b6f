"""Replica-to-replica forwarding of commands, authenticated by the shared internal secret."""

from __future__ import annotations

import hmac
from typing import Any

import httpx

from cluster import Owner
from csms.commands.errors import ForwardFailed
from csms.commands.service import ExecuteRequest, ExecuteResult

SECRET_HEADER = "X-CSMS-Internal-Secret"
EXECUTE_PATH = "/internal/v1/commands/execute"
EXECUTE_BATCH_PATH = "/internal/v1/commands/execute-batch"


def secret_matches(configured: str, presented: str | None) -> bool:
    """An unset secret disables the internal endpoints entirely: they are never open without one."""
    return bool(configured) and presented is not None and hmac.compare_digest(configured, presented)


class HttpForwarder:
    def __init__(self, client: httpx.AsyncClient, secret: str) -> None:
        self._client = client
        self._secret = secret

    async def execute(self, owner: Owner, request: ExecuteRequest) -> ExecuteResult:
        return ExecuteResult.from_json(await self._post(owner, EXECUTE_PATH, request.as_json(), request.timeout))

    async def execute_batch(self, owner: Owner, requests: list[ExecuteRequest]) -> list[ExecuteResult]:
        """One request carrying many commands; the owner answers with one result per command, in order."""
        body = {"commands": [r.as_json() for r in requests]}
        answer = await self._post(owner, EXECUTE_BATCH_PATH, body, max(r.timeout for r in requests))
        try:
            results = [ExecuteResult.from_json(r) for r in answer["results"]]
        except (KeyError, TypeError) as exc:
            raise ForwardFailed(f"owner {owner.node_id} answered a malformed batch: {exc!r}", sent=True) from None
        if len(results) != len(requests):
            raise ForwardFailed(f"owner {owner.node_id} answered {len(results)} of {len(requests)}", sent=True)
        return results

    async def _post(self, owner: Owner, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        if not self._secret:
            raise ForwardFailed("CSMS_INTERNAL_SECRET is not set, so commands cannot be routed", sent=False)
        try:
            response = await self._client.post(
                owner.address.rstrip("/") + path,
                json=body,
                headers={SECRET_HEADER: self._secret},
                timeout=timeout + 5.0,
            )
        except httpx.ConnectError as exc:
            raise ForwardFailed(f"owner {owner.node_id} unreachable: {exc}", sent=False) from None
        except httpx.HTTPError as exc:
            raise ForwardFailed(f"owner {owner.node_id} failed mid-request: {exc!r}", sent=True) from None
        if response.status_code != 200:
            # 401/403/404 mean the owner refused before doing anything; 5xx may have happened mid-way.
            raise ForwardFailed(
                f"owner {owner.node_id} answered HTTP {response.status_code}", sent=response.status_code >= 500
            )
        answer: dict[str, Any] = response.json()
        return answer
