"""An in-process replica on a fresh database per test, with helpers to reach it like a station or operator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trio

from csms.app import run
from csms.config import load

TOKEN = "test-admin-token"
READ_TOKEN = "test-read-token"


@dataclass
class Running:
    ocpp_url: str
    api_url: str
    database_url: str

    def api(self, token: str = TOKEN) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    async def put_station(self, station_id: str, **body: Any) -> None:
        async with self.api() as client:
            response = await client.put(f"/api/v1/stations/{station_id}", json=body)
            assert response.status_code in (200, 201), response.text

    async def put_id_tag(self, id_tag: str, **body: Any) -> None:
        async with self.api() as client:
            response = await client.put(f"/api/v1/id-tags/{id_tag}", json={"status": "Accepted", **body})
            assert response.status_code in (200, 201), response.text


def replica_env(database_url: str, **overrides: str) -> dict[str, str]:
    return {
        "CSMS_DATABASE_URL": database_url,
        "CSMS_BIND": "127.0.0.1",
        "CSMS_OCPP_PORT": "0",
        "CSMS_API_PORT": "0",
        "CSMS_API_TOKENS": f"{TOKEN}:admin:ci-admin,{READ_TOKEN}:read",
        "CSMS_NODE_ID": "test-node",
        "CSMS_LOG_FORMAT": "text",
        "CSMS_PASSWORD_ITERATIONS": "1000",
        **overrides,
    }


@pytest.fixture
def replica_overrides() -> dict[str, str]:
    """Tests override settings with `@pytest.mark.parametrize("replica_overrides", [{...}])` or a fixture."""
    return {}


@pytest.fixture
async def csms(database_url: str, replica_overrides: dict[str, str]) -> AsyncIterator[Running]:
    config = load(environ=replica_env(database_url, **replica_overrides))
    async with trio.open_nursery() as nursery:
        ports = await nursery.start(run, config)
        yield Running(
            ocpp_url=f"ws://127.0.0.1:{ports['ocpp_port']}/ocpp",
            api_url=f"http://127.0.0.1:{ports['api_port']}",
            database_url=database_url,
        )
        nursery.cancel_scope.cancel()
