"""A rolling update and a rollback with real processes: the previous release's replica (the code at
PREVIOUS_RELEASE, unpacked from git) serves against the new schema next to a new replica, drains onto it, and
serves again after a rollback. This is the check behind docs/operations/upgrades.md's expand/contract policy: a
migration the previous release cannot live with fails here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from devcluster.replica import ReplicaProcess
from devcluster.station import SimulatedStation

pytestmark = pytest.mark.cluster

# The release the current code must stay compatible with; move it forward at each release.
PREVIOUS_RELEASE = "6d870ac"
REPO = Path(__file__).resolve().parents[2]
TOKEN = "upgrade-test-admin-token"


def _previous_release(into: Path) -> Path:
    """The previous release's source tree, from git (skips where the history is not there)."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", PREVIOUS_RELEASE, "csms", "cluster"], capture_output=True, timeout=60
    )
    if archive.returncode != 0:
        pytest.skip(f"no git history for {PREVIOUS_RELEASE}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True, timeout=60)
    return into


def _env(database_url: str, etcd_url: str, prefix: str, **extra: str) -> dict[str, str]:
    return {
        "CSMS_DATABASE_URL": database_url,
        "CSMS_ETCD_ENDPOINTS": etcd_url,
        "CSMS_ETCD_PREFIX": prefix,
        "CSMS_LEASE_TTL": "2",
        "CSMS_DRAIN_TIMEOUT": "10",
        "CSMS_REGISTRATION": "auto",
        "CSMS_API_TOKENS": TOKEN,
        "CSMS_INTERNAL_SECRET": "upgrade-test-internal-secret",
        "CSMS_PASSWORD_ITERATIONS": "1000",
        "CSMS_LOG_FORMAT": "text",
        "CSMS_DB_POOL_SIZE": "3",
        **extra,
    }


async def _csms(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(120):
        return await trio.run_process(
            [sys.executable, "-m", "csms", *args],
            env={**os.environ, **env},
            cwd=cwd,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


async def _start(replica: ReplicaProcess) -> ReplicaProcess:
    replica.start()
    await trio.to_thread.run_sync(replica.wait_ready, 60.0)
    return replica


async def _energy(replica: ReplicaProcess, transaction_id: int) -> Any:
    async with httpx.AsyncClient(base_url=replica.api_url, timeout=5.0) as api:
        answer = await api.get(f"/api/v1/transactions/{transaction_id}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200, answer.text
        return answer.json()["energy_wh"]


async def _full_session(url: str, station_id: str, meter_start: int) -> int:
    async with SimulatedStation.connect(url, station_id) as station:
        await station.boot()
        started = await station.start_transaction(1, "TAG-UPGRADE", meter_start)
        await station.meter_values(1, started["transactionId"], meter_start + 100)
        await station.stop_transaction(started["transactionId"], meter_start + 250)
        return int(started["transactionId"])


async def test_previous_release_serves_against_the_new_schema_through_upgrade_and_rollback(
    database_url: str, etcd_url: str, prefix: str, tmp_path: Path
) -> None:
    previous = _previous_release(tmp_path / "previous")
    env = _env(database_url, etcd_url, prefix)
    old_env = {**env, "PYTHONPATH": str(previous)}  # and cwd=previous: `python -m` puts the cwd first
    # The previous release really is older code: it has no `migrate` command.
    probe = await _csms(["migrate"], old_env, cwd=previous)
    assert probe.returncode == 2 and b"invalid choice: 'migrate'" in probe.stderr, probe.stderr

    old = await _start(ReplicaProcess("old-1", old_env, log_dir=tmp_path, cwd=previous))
    new: ReplicaProcess | None = None
    rolled_back: ReplicaProcess | None = None
    try:
        async with SimulatedStation.connect(old.ocpp_url, "CP-LONG") as long_session:
            await long_session.boot()
            started = await long_session.start_transaction(1, "TAG-UPGRADE", 1000)
            tx_id = int(started["transactionId"])
            await long_session.meter_values(1, tx_id, 1500)

            # The upgrade: the new release migrates (the chart's pre-upgrade Job), then its replica starts.
            migrate = await _csms(["migrate"], env, cwd=REPO)
            assert migrate.returncode == 0, migrate.stderr.decode()
            new = await _start(ReplicaProcess("new-1", env, log_dir=tmp_path, cwd=REPO))

            # Mid-rollout both serve: the old one on the new schema, the new one beside it.
            old_tx = await _full_session(old.ocpp_url, "CP-OLD", 5000)
            new_tx = await _full_session(new.ocpp_url, "CP-NEW", 7000)
            assert await _energy(new, old_tx) == 250 and await _energy(old, new_tx) == 250

            # The old replica drains (SIGTERM, as Kubernetes does) and exits cleanly.
            old.terminate()
            assert await trio.to_thread.run_sync(old.wait, 30.0) == 0, old.log_tail()

        # The long session's station reconnects to the new replica and finishes its transaction there.
        async with SimulatedStation.connect(new.ocpp_url, "CP-LONG") as long_session:
            await long_session.meter_values(1, tx_id, 1800)
            await long_session.stop_transaction(tx_id, 2000)
        assert await _energy(new, tx_id) == 1000

        # Rollback: the previous release comes back on the schema the new one left, and reads its rows.
        new.terminate()
        assert await trio.to_thread.run_sync(new.wait, 30.0) == 0, new.log_tail()
        rolled_back = await _start(ReplicaProcess("old-2", old_env, log_dir=tmp_path, cwd=previous))
        assert await _energy(rolled_back, tx_id) == 1000
        await _full_session(rolled_back.ocpp_url, "CP-LONG", 3000)
    finally:
        for replica in (old, new, rolled_back):
            if replica is not None:
                await trio.to_thread.run_sync(replica.stop)
