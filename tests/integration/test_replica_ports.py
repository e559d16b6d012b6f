"""The test harness's replica process: a port it picked and lost to another process before the replica bound
it (free ports are free only when picked) is picked again, instead of failing the test that started it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devcluster import replica as replica_module
from devcluster.replica import ReplicaProcess

pytestmark = pytest.mark.integration


def test_a_first_start_that_lost_its_port_picks_new_ones(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    picks = iter([taken.getsockname()[1], replica_module.free_port()])
    real = replica_module.free_port
    monkeypatch.setattr(replica_module, "free_port", lambda: next(picks, None) or real())
    node = ReplicaProcess("ports-1", {"CSMS_DATABASE_URL": database_url, "CSMS_API_TOKENS": "t" * 16}, log_dir=tmp_path)
    assert node.ocpp_port == taken.getsockname()[1]
    try:
        node.start()
        node.wait_ready(60)
        assert node.ocpp_port != taken.getsockname()[1]
        assert "Address already in use" in (tmp_path / "ports-1.log").read_text()
    finally:
        node.stop(timeout=10)
        taken.close()
