"""The dev cluster's supervision and balancer: replica exits are reported and restarted by policy; the API balancer's
/metrics is its own, never a random replica's."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from devcluster.balancer import TcpBalancer
from devcluster.replica import ReplicaProcess
from devcluster.supervisor import Supervisor


def _broken_replica(tmp_path: Path) -> ReplicaProcess:
    """A real `csms serve` that exits at once with code 1 (no database configured)."""
    return ReplicaProcess("replica-9", {"CSMS_DATABASE_URL": ""}, log_dir=tmp_path)


async def test_an_exit_is_reported_with_its_code_and_last_log_lines(tmp_path: Path) -> None:
    replica = _broken_replica(tmp_path)
    said: list[str] = []
    done = trio.Event()

    def say(text: str) -> None:
        said.append(text)
        if "stays down" in text:
            done.set()

    replica.start()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(Supervisor([replica], "never", say=say).run)
        with trio.fail_after(30):
            await done.wait()
        nursery.cancel_scope.cancel()
    report = "\n".join(said)
    assert "replica-9 exited with code 1" in report
    assert "CSMS_DATABASE_URL is not set" in report, "the last log lines say why"
    assert "--restart on-failure" in report


async def test_on_failure_restarts_with_a_growing_pause(tmp_path: Path) -> None:
    replica = _broken_replica(tmp_path)
    third_exit = trio.Event()

    def say(text: str) -> None:
        if text.count("exited with code") and len(supervisor.exits) >= 3:
            third_exit.set()

    supervisor = Supervisor([replica], "on-failure", say=say, first_pause=0.01, max_pause=0.05)
    replica.start()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(supervisor.run)
            with trio.fail_after(60):
                await third_exit.wait()
            nursery.cancel_scope.cancel()
    finally:
        replica.stop(timeout=10)
    assert supervisor.restarts["replica-9"] == 2
    assert [code for _, code in supervisor.exits] == [1, 1, 1]


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="never, on-failure, always"):
        Supervisor([], "sometimes")


async def _backend(stream: trio.SocketStream) -> None:
    """A replica stand-in: answers any request with its own body."""
    async with stream:
        await stream.receive_some(65536)
        body = b"from-a-replica"
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )


@pytest.mark.parametrize("own_metrics", [True, False])
async def test_the_api_balancer_answers_metrics_itself(own_metrics: bool) -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, _backend, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        balancer = TcpBalancer([("127.0.0.1", port)], own_metrics=own_metrics)
        await nursery.start(balancer.serve, "127.0.0.1", 0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{balancer.port}", timeout=5) as client:
            metrics = (await client.get("/metrics")).text
            api = (await client.get("/api/v1/stations")).text
        nursery.cancel_scope.cancel()
    assert api == "from-a-replica", "everything else is forwarded"
    if own_metrics:
        assert "csms_dev_balancer_backend_up" in metrics and "not a replica's" in metrics
        assert "from-a-replica" not in metrics
    else:
        assert metrics == "from-a-replica"
