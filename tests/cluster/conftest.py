"""Real etcd for the cluster tests: one per session, plus throwaway ones for tests that break it."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import pytest
import trio

from cluster import Claim, EtcdClient, EtcdCoordinator
from devcluster.etcd import EtcdServer

_counter = itertools.count()


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EtcdServer]:
    with EtcdServer() as server:
        yield server


@pytest.fixture
def etcd_url(etcd_server: EtcdServer) -> str:
    # A test that restarted/paused the shared server must not leave it unusable for the next one.
    etcd_server.resume()
    etcd_server.start()
    return etcd_server.client_url


@pytest.fixture
def private_etcd() -> Iterator[EtcdServer]:
    """A dedicated etcd for tests that restart, pause or compact it."""
    with EtcdServer() as server:
        yield server


@pytest.fixture
def prefix() -> str:
    """A fresh key prefix per test so tests sharing the session etcd never see each other's keys."""
    return f"/test-{os.getpid()}-{next(_counter)}/"


@pytest.fixture
async def etcd(etcd_url: str) -> AsyncIterator[EtcdClient]:
    async with EtcdClient([etcd_url], timeout=2.0) as client:
        yield client


async def _wait_until(predicate: Callable[[], bool], within: float, what: str = "condition") -> float:
    """Poll until predicate() holds; returns the seconds it took, fails the test after ``within`` s."""
    started = trio.current_time()
    with trio.move_on_after(within):
        while not predicate():
            await trio.sleep(0.02)
        return trio.current_time() - started
    raise AssertionError(f"{what} not reached within {within}s")


WaitUntil = Callable[..., Awaitable[float]]


@pytest.fixture
def wait_until() -> WaitUntil:
    """``await wait_until(predicate, timeout, what)`` (a fixture, as tests/cluster is no package)."""
    return _wait_until


@dataclass
class Node:
    """An EtcdCoordinator running in the test nursery, with recorders for its callbacks."""

    coord: EtcdCoordinator
    scope: trio.CancelScope
    lost: list[Claim] = field(default_factory=list)
    fenced: list[float] = field(default_factory=list)
    leader_changes: list[bool] = field(default_factory=list)

    def crash(self) -> None:
        """Stop everything without telling etcd: the lease is left to expire."""
        self.scope.cancel()


NodeFactory = Callable[..., Awaitable[Node]]


@pytest.fixture
def start_node(nursery: trio.Nursery, prefix: str, etcd_url: str) -> NodeFactory:
    async def start(
        node_id: str, *, ttl: float = 2.0, endpoints: list[str] | None = None, call_timeout: float = 1.0
    ) -> Node:
        client = EtcdClient(endpoints or [etcd_url], timeout=call_timeout)
        coord = EtcdCoordinator(client, node_id, f"http://127.0.0.1:1/{node_id}", "test", prefix=prefix, lease_ttl=ttl)

        async def run(task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED) -> None:
            with trio.CancelScope() as scope:
                async with client, trio.open_nursery() as inner:
                    await inner.start(coord.run)
                    task_status.started(scope)

        scope = await nursery.start(run)
        node = Node(coord, scope)
        coord.on_claim_lost(node.lost.append)
        coord.on_lease_lost(lambda: node.fenced.append(trio.current_time()))
        coord.on_leader_changed(node.leader_changes.append)
        return node

    return start
