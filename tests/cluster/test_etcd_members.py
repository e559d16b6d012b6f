"""etcd as the chart deploys it: over TLS (with a CA the test makes), and as three members of which one dies.

Real etcd processes on loopback; the CSMS etcd client (cluster/etcd_client.py) and a real `csms serve` replica
talk to them.
"""

from __future__ import annotations

import re
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from cluster import EtcdClient, EtcdUnavailable
from devcluster.etcd import EtcdServer
from devcluster.replica import ReplicaProcess
from devcluster.station import SimulatedStation

pytestmark = pytest.mark.cluster

TOKEN = "etcd-members-test-token"


# ---------------------------------------------------------------------------------------------- helpers


def make_ca(directory: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl command."""
    files = {name: directory / name for name in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt")}
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ca = ["-keyout", files["ca.key"], "-out", files["ca.crt"], "-days", "1", "-subj", "/CN=csms-test-ca"]
    csr = ["-keyout", files["server.key"], "-out", files["server.csr"], "-subj", "/CN=127.0.0.1"]
    sign = ["-in", files["server.csr"], "-CA", files["ca.crt"], "-CAkey", files["ca.key"], "-CAcreateserial"]
    commands = [
        ["req", "-x509", *curve, *ca],
        ["req", *curve, *csr],
        ["x509", "-req", *sign, "-out", files["server.crt"], "-days", "1", "-extfile", directory / "san.ext"],
    ]
    for args in commands:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)
    return files


class Member(EtcdServer):
    """One etcd member: TLS on the client port when given certificate files, part of `cluster` when set."""

    def __init__(self, name: str, base: Path, tls: dict[str, Path] | None = None) -> None:
        super().__init__(base / name, name=name)
        self.tls = tls
        self.cluster: list[Member] = [self]

    @property
    def client_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"

    def _command(self) -> list[str]:
        command = super()._command()
        peers = ",".join(f"{m.name}={m.peer_url}" for m in self.cluster)
        command = [c for c in command if not c.startswith("--initial-cluster=")]
        command += [f"--initial-cluster={peers}", "--initial-cluster-token=csms-test"]
        if self.tls:
            # Server TLS only (--trusted-ca-file would also demand client certificates).
            command += [f"--cert-file={self.tls['server.crt']}", f"--key-file={self.tls['server.key']}"]
        return command

    def healthy(self, timeout: float = 0.5) -> bool:
        context = ssl.create_default_context(cafile=str(self.tls["ca.crt"])) if self.tls else None
        try:
            with urllib.request.urlopen(self.client_url + "/health", timeout=timeout, context=context) as resp:
                return b'"true"' in resp.read()
        except (OSError, urllib.error.URLError):
            return False

    def launch(self) -> None:
        """Start without waiting for health: members of a new cluster become healthy only together."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture
def three_members(tmp_path: Path) -> Iterator[list[Member]]:
    members = [Member(f"m{i}", tmp_path) for i in range(3)]
    for member in members:
        member.cluster = members
    try:
        for member in members:
            member.launch()
        for member in members:
            member._wait_healthy()
        yield members
    finally:
        for member in members:
            member.kill()


def _replica_env(database_url: str, endpoints: list[str], prefix: str, **extra: str) -> dict[str, str]:
    return {
        "CSMS_DATABASE_URL": database_url,
        "CSMS_ETCD_ENDPOINTS": ",".join(endpoints),
        "CSMS_ETCD_PREFIX": prefix,
        "CSMS_LEASE_TTL": "2",
        "CSMS_REGISTRATION": "auto",
        "CSMS_API_TOKENS": TOKEN,
        "CSMS_INTERNAL_SECRET": "etcd-members-internal-secret",
        "CSMS_LOG_FORMAT": "text",
        "CSMS_DB_POOL_SIZE": "3",
        **extra,
    }


async def _renewals(http: httpx.AsyncClient, replica: ReplicaProcess) -> float:
    """Successful lease renewals so far, from the replica's own metrics."""
    text = (await http.get(replica.api_url + "/metrics")).text
    total = re.search(r'csms_etcd_request_duration_seconds_count\{operation="lease/keepalive"\} (\S+)', text)
    failed = re.search(r'csms_etcd_errors_total\{operation="lease/keepalive"\} (\S+)', text)
    return (float(total.group(1)) if total else 0.0) - (float(failed.group(1)) if failed else 0.0)


async def _owner(client: EtcdClient, prefix: str, station_id: str) -> bytes | None:
    result = await client.get(f"{prefix}owners/{station_id}".encode())
    return result.kvs[0].value if result.kvs else None


# ---------------------------------------------------------------------------------------------- TLS


async def test_the_client_talks_tls_with_the_given_ca_and_refuses_without(tmp_path: Path) -> None:
    tls = make_ca(tmp_path)
    member = Member("tls", tmp_path, tls)
    try:
        member.start()
        assert member.client_url.startswith("https://")
        async with EtcdClient([member.client_url], ca_file=str(tls["ca.crt"]), timeout=5.0) as client:
            await client.put(b"/tls-test/key", b"value")
            assert (await client.get(b"/tls-test/key")).kvs[0].value == b"value"
            lease = await client.lease_grant(5)
            assert await client.lease_keepalive(lease.id) > 0
        # The system trust store does not know the test CA: the handshake must fail, not fall back to plain text.
        async with EtcdClient([member.client_url], timeout=2.0) as untrusting:
            with pytest.raises(EtcdUnavailable):
                await untrusting.get(b"/tls-test/key")
    finally:
        member.cleanup()


async def test_a_replica_joins_through_tls_etcd(tmp_path: Path, database_url: str) -> None:
    tls = make_ca(tmp_path)
    member = Member("tls", tmp_path, tls)
    replica = ReplicaProcess(
        "tls-replica",
        _replica_env(database_url, [member.client_url], "/tls/", CSMS_ETCD_CA_FILE=str(tls["ca.crt"])),
        log_dir=tmp_path,
    )
    try:
        member.start()
        replica.start()
        await trio.to_thread.run_sync(replica.wait_ready, 60.0)
        async with SimulatedStation.connect(replica.ocpp_url, "CP-TLS") as station:
            await station.boot()
            async with EtcdClient([member.client_url], ca_file=str(tls["ca.crt"])) as client:
                assert b"tls-replica" in (await _owner(client, "/tls/", "CP-TLS") or b"")
    finally:
        await trio.to_thread.run_sync(replica.stop)
        member.cleanup()


# ---------------------------------------------------------------------------------------------- member loss


async def test_the_client_fails_over_when_a_member_is_killed(three_members: list[Member]) -> None:
    endpoints = [m.client_url for m in three_members]
    async with EtcdClient(endpoints, timeout=3.0) as client:
        lease = await client.lease_grant(10)
        await client.put(b"/members/before", b"1", lease=lease.id)
        three_members[0].kill()  # the endpoint the client prefers (it answered first)
        killed_at = trio.current_time()
        # Requests in flight to the dead member may fail once (a write that may have applied is never retried
        # blindly); within one lease renewal period everything goes through the survivors.
        with trio.fail_after(5):
            while True:
                try:
                    assert await client.lease_keepalive(lease.id) > 0
                    break
                except EtcdUnavailable:
                    await trio.sleep(0.1)
        failover = trio.current_time() - killed_at
        await client.put(b"/members/after", b"2")
        assert (await client.get(b"/members/before")).kvs[0].value == b"1", "the lease and its key survived"
        assert (await client.get(b"/members/after")).kvs[0].value == b"2"
    assert failover < 3.0, f"failover took {failover:.2f}s"


async def test_a_replica_keeps_its_lease_and_claims_through_a_member_loss(
    three_members: list[Member], tmp_path: Path, database_url: str
) -> None:
    endpoints = [m.client_url for m in three_members]
    replica = ReplicaProcess("members-replica", _replica_env(database_url, endpoints, "/members/"), log_dir=tmp_path)
    try:
        replica.start()
        await trio.to_thread.run_sync(replica.wait_ready, 60.0)
        async with SimulatedStation.connect(replica.ocpp_url, "CP-BEFORE") as before:
            await before.boot()
            three_members[0].kill()
            async with EtcdClient(endpoints[1:], timeout=3.0) as survivors, httpx.AsyncClient(timeout=2.0) as http:
                # After three more successful lease renewals (one TTL and more) the replica still holds its lease
                # (ready) and its station...
                renewed = await _renewals(http, replica)
                with trio.fail_after(15):
                    while await _renewals(http, replica) < renewed + 3:
                        await trio.sleep(0.2)
                assert (await http.get(replica.api_url + "/readyz")).status_code == 200, replica.log_tail()
                assert b"members-replica" in (await _owner(survivors, "/members/", "CP-BEFORE") or b"")
                # ...and claims new stations through the surviving members.
                async with SimulatedStation.connect(replica.ocpp_url, "CP-AFTER") as after:
                    await after.boot()
                    assert b"members-replica" in (await _owner(survivors, "/members/", "CP-AFTER") or b"")
        assert replica.running, replica.log_tail()
    finally:
        await trio.to_thread.run_sync(replica.stop)
