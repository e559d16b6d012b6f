"""Replica-to-replica forwarding of commands, authenticated by the shared internal secret."""

from __future__ import annotations

import hmac

import httpx

from cluster import Owner
from csms.commands.errors import ForwardFailed
from csms.commands.service import ExecuteRequest, ExecuteResult

SECRET_HEADER = "X-CSMS-Internal-Secret"
EXECUTE_PATH = "/internal/v1/commands/execute"


def secret_matches(configured: str, presented: str | None) -> bool:
    """An unset secret disables the internal endpoints entirely: they are never open without one."""
    return bool(configured) and presented is not None and hmac.compare_digest(configured, presented)


class HttpForwarder:
    def __init__(self, client: httpx.AsyncClient, secret: str) -> None:
        self._client = client
        self._secret = secret

    async def execute(self, owner: Owner, request: ExecuteRequest) -> ExecuteResult:
        if not self._secret:
            raise ForwardFailed("CSMS_INTERNAL_SECRET is not set, so commands cannot be routed", sent=False)
        try:
            response = await self._client.post(
                owner.address.rstrip("/") + EXECUTE_PATH,
                json=request.as_json(),
                headers={SECRET_HEADER: self._secret},
                timeout=request.timeout + 5.0,
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
        return ExecuteResult.from_json(response.json())
