"""A real-process cluster for tests: Postgres, etcd and N `csms serve` replicas behind dev TCP balancers.

Each replica reaches etcd through its own `TcpBalancer` (a proxy the test can `cut()` to partition that replica
from etcd), stations reach the replicas through an OCPP balancer, operators through an API balancer, exactly as
in a deployment. Replicas are plain child processes: tests SIGKILL, SIGTERM, SIGSTOP and restart them.

Every replica's Postgres connections carry its node id (`?csms.node=<id>` in the URL becomes a session setting),
and the harness installs audit triggers on the test database, so every fenced write (transactions, meter
values, connector status history) and every fence change is recorded with the replica that made it and the
fence that was current at that instant. That is independent evidence of who served a station when, which the
ownership invariants of the failover, partition and chaos tests are checked against.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio
from trio_websocket import ConnectionClosed

from cluster import EtcdClient
from csms.storage import Database, StorageError
from devcluster.balancer import TcpBalancer
from devcluster.replica import ReplicaProcess
from devcluster.station import CallErrorReply, Payload, SimulatedStation

TOKEN = "cluster-test-admin-token"

# Fast failure detection: a 2 s lease, and dead station sockets noticed within ~2 s.
FAST_ENV = {
    "CSMS_LEASE_TTL": "2",
    "CSMS_PING_INTERVAL": "1",
    "CSMS_PING_TIMEOUT": "1",
    "CSMS_CALL_TIMEOUT": "5",
    "CSMS_DRAIN_TIMEOUT": "15",
    "CSMS_DRAIN_RATE": "50",
    "CSMS_REGISTRATION": "auto",
    "CSMS_API_TOKENS": TOKEN,
    "CSMS_INTERNAL_SECRET": "cluster-test-internal-secret",
    "CSMS_PASSWORD_ITERATIONS": "1000",
    "CSMS_LOG_FORMAT": "text",
    "CSMS_DB_POOL_SIZE": "4",
}

# Who wrote what, under which fence. `writer` is the writing replica (its session's csms.node setting);
# `fence`/`fence_node` are the station's fence row as seen inside the writing transaction.
AUDIT_SQL = """
CREATE TABLE IF NOT EXISTS test_audit (
    seq        bigserial PRIMARY KEY,
    kind       text NOT NULL,
    station_id text NOT NULL,
    writer     text NOT NULL,
    fence      bigint,
    fence_node text,
    row_id     bigint,
    at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE OR REPLACE FUNCTION test_audit_fence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_audit (kind, station_id, writer, fence, fence_node)
    VALUES ('fence', NEW.station_id, coalesce(current_setting('csms.node', true), ''), NEW.fence, NEW.node_id);
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION test_audit_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    f record;
BEGIN
    SELECT fence, node_id INTO f FROM station_fences WHERE station_id = NEW.station_id;
    INSERT INTO test_audit (kind, station_id, writer, fence, fence_node, row_id)
    VALUES (TG_TABLE_NAME, NEW.station_id, coalesce(current_setting('csms.node', true), ''), f.fence, f.node_id,
            NEW.id);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS test_audit ON station_fences;
CREATE TRIGGER test_audit AFTER INSERT OR UPDATE ON station_fences
    FOR EACH ROW EXECUTE FUNCTION test_audit_fence();
DROP TRIGGER IF EXISTS test_audit ON transactions;
CREATE TRIGGER test_audit AFTER INSERT OR UPDATE ON transactions
    FOR EACH ROW EXECUTE FUNCTION test_audit_write();
DROP TRIGGER IF EXISTS test_audit ON meter_values;
CREATE TRIGGER test_audit AFTER INSERT ON meter_values
    FOR EACH ROW EXECUTE FUNCTION test_audit_write();
DROP TRIGGER IF EXISTS test_audit ON connector_status_history;
CREATE TRIGGER test_audit AFTER INSERT ON connector_status_history
    FOR EACH ROW EXECUTE FUNCTION test_audit_write();
"""


# Known product bug (reported; remove once fixed): cluster/transport.py computes a negative per-endpoint time
# share when a call's deadline has already passed (e.g. the process was frozen past its lease deadline) and
# trio raises ValueError, which escapes the lease keep-alive loop and kills the replica.
async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str, poll: float = 0.1) -> float:
    """Poll an async predicate until it holds; returns the seconds it took, or fails naming `what`."""
    started = trio.current_time()
    with trio.move_on_after(timeout):
        while not await predicate():
            await trio.sleep(poll)
        return trio.current_time() - started
    raise AssertionError(f"{what}: not within {timeout}s")


@dataclass(eq=False)
class Node:
    """One replica, its cuttable etcd proxy and its log."""

    replica: ReplicaProcess
    etcd_proxy: TcpBalancer

    @property
    def node_id(self) -> str:
        return self.replica.node_id

    @property
    def ocpp_url(self) -> str:
        return self.replica.ocpp_url

    @property
    def api_url(self) -> str:
        return self.replica.api_url

    @property
    def running(self) -> bool:
        return self.replica.running

    def log(self) -> str:
        return self.replica.log_path.read_text(errors="replace") if self.replica.log_path.exists() else ""


class ReplicaCluster:
    """Handles on a running cluster; build it with `open_cluster(...)`."""

    def __init__(self, database_url: str, etcd_url: str, prefix: str, nursery: trio.Nursery) -> None:
        self.database_url = database_url
        self.etcd_url = etcd_url
        self.prefix = prefix
        self.nodes: list[Node] = []
        self.ocpp_balancer = TcpBalancer([])
        self.api_balancer = TcpBalancer([])
        self._nursery = nursery
        self._db: Database | None = None
        self._db_scope: trio.CancelScope | None = None
        self.etcd = EtcdClient([etcd_url], timeout=2.0)

    # -- addresses ---------------------------------------------------------------------------------------

    @property
    def ocpp_url(self) -> str:
        """Where stations connect (through the OCPP balancer)."""
        return f"ws://127.0.0.1:{self.ocpp_balancer.port}/ocpp"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_balancer.port}"

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KeyError(node_id)

    def api(self, node: Node | None = None, timeout: float = 5.0) -> httpx.AsyncClient:
        """An API client through the API balancer, or straight to one replica."""
        return httpx.AsyncClient(
            base_url=node.api_url if node else self.api_url,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=timeout,
        )

    # -- ownership and leadership (from etcd, the source of truth) --------------------------------------------

    async def owner(self, station_id: str) -> str | None:
        kv = (await self.etcd.get(f"{self.prefix}owners/{station_id}")).first()
        if kv is None:
            return None
        return str(orjson.loads(kv.value).get("node_id"))

    async def owners(self) -> dict[str, str]:
        """station id -> owning node id, for every owned station."""
        result = await self.etcd.get(f"{self.prefix}owners/", prefix=True)
        cut = len(f"{self.prefix}owners/")
        return {kv.key[cut:].decode(): str(orjson.loads(kv.value).get("node_id")) for kv in result.kvs}

    async def leader(self) -> str | None:
        kv = (await self.etcd.get(f"{self.prefix}leader")).first()
        return kv.value.decode() if kv is not None else None

    async def owner_via_api(self, station_id: str, node: Node | None = None) -> str | None:
        async with self.api(node) as api:
            response = await api.get(f"/api/v1/stations/{station_id}")
            response.raise_for_status()
            owner = response.json().get("owner_node")
            return str(owner) if owner else None

    async def wait_owned(
        self,
        station_id: str,
        *,
        by: Iterable[str] | None = None,
        not_by: Iterable[str] = (),
        timeout: float = 10.0,
    ) -> str:
        """Until the station is owned (by one of `by`, and by none of `not_by`); returns the owner."""
        allowed = set(by) if by is not None else None
        banned = set(not_by)
        found: list[str] = []

        async def owned() -> bool:
            owner = await self.owner(station_id)
            ok = owner is not None and owner not in banned and (allowed is None or owner in allowed)
            if ok and owner is not None:
                found.append(owner)
            return ok

        await wait_for(owned, timeout, f"{station_id} owned (by={allowed}, not_by={banned})")
        return found[-1]

    # -- replica health and metrics ---------------------------------------------------------------------------

    async def ready(self, node: Node) -> bool | None:
        """/readyz of one replica: True/False, None if it does not answer at all."""
        try:
            async with self.api(node, timeout=1.0) as api:
                return (await api.get("/readyz")).status_code == 200
        except httpx.HTTPError:
            return None

    async def wait_ready(self, node: Node, timeout: float = 20.0) -> float:
        async def ready() -> bool:
            return bool(await self.ready(node))

        return await wait_for(ready, timeout, f"{node.node_id} ready")

    async def metric(self, node: Node, name: str) -> float:
        """Sum of every sample of a Prometheus metric on one replica (0 when absent)."""
        async with self.api(node, timeout=2.0) as api:
            text = (await api.get("/metrics")).text
        total = 0.0
        for line in text.splitlines():
            match = re.match(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", line)
            if match:
                total += float(match.group(1))
        return total

    # -- process control ------------------------------------------------------------------------------------

    async def kill(self, node: Node) -> None:
        """SIGKILL (a crash)."""
        await trio.to_thread.run_sync(node.replica.kill)

    def terminate(self, node: Node) -> None:
        """SIGTERM (a drain); see `wait_exit`."""
        node.replica.terminate()

    async def wait_exit(self, node: Node, timeout: float) -> int:
        return await trio.to_thread.run_sync(node.replica.wait, timeout)

    def pause(self, node: Node) -> None:
        node.replica.pause()

    def resume(self, node: Node) -> None:
        node.replica.resume()

    async def restart(self, node: Node, timeout: float = 30.0) -> None:
        """Start a dead replica again on the same ports and wait until it is ready."""
        if node.replica.running:
            await self.kill(node)
        node.replica.start()
        await trio.to_thread.run_sync(node.replica.wait_ready, timeout)

    def cut_etcd(self, node: Node) -> None:
        """Partition the replica from etcd (it still reaches Postgres and its stations)."""
        node.etcd_proxy.cut()

    def restore_etcd(self, node: Node) -> None:
        node.etcd_proxy.restore()

    # -- the database, as the test sees it ----------------------------------------------------------------

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """A read on the test database (one retry: the pool may hold a connection from before a restart)."""
        for attempt in range(3):
            db = await self._database()
            try:
                return await db.fetch(sql, *args)
            except StorageError:
                if attempt == 2:
                    raise
                await trio.sleep(0.5)
        raise AssertionError("unreachable")

    async def _database(self) -> Database:
        if self._db is None:
            ready = trio.Event()

            async def hold(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                with trio.CancelScope() as self._db_scope:
                    async with Database.open(self.database_url, pool_size=2, group_commit=False) as db:
                        self._db = db
                        ready.set()
                        await trio.sleep_forever()

            self._nursery.start_soon(hold)
            await ready.wait()
        assert self._db is not None
        return self._db

    async def install_audit(self) -> None:
        db = await self._database()
        await db.execute(AUDIT_SQL)

    async def audit(self) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.fetch("SELECT * FROM test_audit ORDER BY seq")]

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(f"==== {n.node_id} ====\n{n.replica.log_tail(lines)}" for n in self.nodes)

    async def _close(self) -> None:
        if self._db_scope is not None:
            self._db_scope.cancel()
        await self.etcd.aclose()


@asynccontextmanager
async def open_cluster(
    database_url: str,
    etcd_url: str,
    prefix: str,
    log_dir: Path,
    *,
    replicas: int = 3,
    env: dict[str, str] | None = None,
) -> AsyncIterator[ReplicaCluster]:
    """Start `replicas` replicas (each behind its own etcd proxy) and the balancers; stop it all on exit.

    The audit triggers are installed once the schema exists and before the block runs. On an error the
    replicas' log tails are printed (pytest shows them with the failure).
    """
    async with trio.open_nursery() as nursery:
        cluster = ReplicaCluster(database_url, etcd_url, prefix, nursery)
        etcd_host, etcd_port = etcd_url.removeprefix("http://").rsplit(":", 1)
        try:
            for i in range(replicas):
                proxy = TcpBalancer([(etcd_host, int(etcd_port))], connect_timeout=1.0)
                await nursery.start(proxy.serve, "127.0.0.1", 0)
                node_id = f"replica-{i + 1}"
                separator = "&" if "?" in database_url else "?"
                node_env = {
                    **FAST_ENV,
                    "CSMS_DATABASE_URL": f"{database_url}{separator}csms.node={node_id}",
                    "CSMS_ETCD_ENDPOINTS": f"http://127.0.0.1:{proxy.port}",
                    "CSMS_ETCD_PREFIX": prefix,
                    **(env or {}),
                }
                cluster.nodes.append(Node(ReplicaProcess(node_id, node_env, log_dir=log_dir), proxy))
            for node in cluster.nodes:
                node.replica.start()
            async with trio.open_nursery() as starting:
                for node in cluster.nodes:
                    starting.start_soon(trio.to_thread.run_sync, node.replica.wait_ready, 60.0)
            await cluster.install_audit()
            cluster.ocpp_balancer.backends = [("127.0.0.1", n.replica.ocpp_port) for n in cluster.nodes]
            cluster.api_balancer.backends = [("127.0.0.1", n.replica.api_port) for n in cluster.nodes]
            await nursery.start(cluster.ocpp_balancer.serve, "127.0.0.1", 0)
            await nursery.start(cluster.api_balancer.serve, "127.0.0.1", 0)
            yield cluster
        except BaseException:
            print(cluster.log_tails())
            raise
        finally:
            with trio.CancelScope(shield=True):
                for node in cluster.nodes:
                    node.replica.resume()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        await trio.to_thread.run_sync(node.replica.kill)
                await cluster._close()
            nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------------------------------- stations


@dataclass
class Acked:
    """One call the CSMS acknowledged, as the station saw it."""

    action: str
    payload: Payload
    result: Payload
    connection: int  # which of the station's connections (1-based) got the answer
    sent_at: float
    acked_at: float


@dataclass
class Attempt:
    """One unacknowledged try of a call (the station then retried it with a new message id)."""

    action: str
    payload: Payload
    outcome: str  # "CallError:<code>", "timeout" or "interrupted"
    connection: int
    at: float


_RETRYABLE_ERRORS = {"InternalError", "GenericError"}


@dataclass(eq=False)
class FirmwareStation:
    """A station that behaves like real firmware.

    It stays connected through `url` (the balancer), reconnecting with jittered exponential backoff; a call
    that gets no answer (connection dropped, timeout, InternalError) is sent again with a NEW message id and
    the same payload until acknowledged, and a call that times out makes it drop the connection (a dead link,
    say a frozen replica). It keeps a local record of what was acknowledged and of every failed attempt.
    """

    url: str
    station_id: str
    rng: random.Random = field(default_factory=random.Random)
    call_timeout: float = 4.0
    connect_timeout: float = 2.0
    max_backoff: float = 1.0
    reconnect: bool = True  # False: one connection only (tests that pin a station to one replica)
    subprotocols: list[str] | None = None  # None: OCPP 1.6; ["ocpp2.0.1"] for a 2.0.1 station
    acked: list[Acked] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    connect_failures: Counter[str] = field(default_factory=Counter)
    close_codes: list[int | None] = field(default_factory=list)
    closed_at: list[float] = field(default_factory=list)  # trio time each connection was seen to end
    connections: int = 0
    _current: SimulatedStation | None = None
    _drop: trio.Event = field(default_factory=trio.Event)
    _changed: trio.Event = field(default_factory=trio.Event)
    done: trio.Event = field(default_factory=trio.Event)  # set when a non-reconnecting station's link ended

    @property
    def connected(self) -> bool:
        return self._current is not None and self._current.ws.closed is None

    @property
    def current(self) -> SimulatedStation | None:
        return self._current

    def failures(self, since: float = 0.0) -> Counter[str]:
        return Counter(a.outcome for a in self.attempts if a.at >= since)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The connection loop; runs until cancelled."""
        task_status.started()
        backoff = 0.05
        while True:
            try:
                # Bounded from outside too: trio-websocket's client can hang in a handshake after a refusal.
                opened = False
                with trio.CancelScope(deadline=trio.current_time() + self.connect_timeout + 3) as link:
                    async with SimulatedStation.connect(
                        self.url, self.station_id, connect_timeout=self.connect_timeout, subprotocols=self.subprotocols
                    ) as station:
                        link.deadline, opened = math.inf, True
                        self.connections += 1
                        backoff = 0.05
                        self._drop = trio.Event()
                        self._current = station
                        self._notify()
                        while station.ws.closed is None and not self._drop.is_set():
                            with trio.move_on_after(0.05):
                                await self._drop.wait()
                        closed = station.ws.closed
                        self.close_codes.append(closed.code if closed is not None else None)
                        self.closed_at.append(trio.current_time())
                        self._current = None
                        self._notify()
                        if not self.reconnect:
                            self.done.set()  # now, not after the close handshake with a possibly dead peer
                        # Bounded: trio-websocket can hang in the close handshake with a peer already gone.
                        link.deadline = trio.current_time() + 3
                if link.cancelled_caught and not opened:
                    self.connect_failures["hung handshake"] += 1
            except Exception as exc:  # refused, reset, handshake timeout: all mean "try again later"
                self.connect_failures[type(exc).__name__] += 1
            except BaseException as exc:
                # trio-websocket can leak its reader task's Cancelled out of a connection that died mid-close
                # (python-trio/trio-websocket#184: a Pong sent in LOCAL_CLOSING); unless we are really being
                # cancelled (the checkpoint re-raises then), that is one more dead link, not the end of us.
                if not isinstance(exc, trio.Cancelled | BaseExceptionGroup):
                    raise
                await trio.lowlevel.checkpoint()
                self.connect_failures[f"leaked {type(exc).__name__}"] += 1
            self._current = None
            if not self.reconnect:
                self.done.set()
                return
            await trio.sleep(backoff * (0.5 + self.rng.random()))
            backoff = min(backoff * 2, self.max_backoff)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def drop(self) -> None:
        """Close the current connection (the loop reconnects)."""
        self._drop.set()

    async def wait_connected(self, timeout: float = 10.0) -> SimulatedStation:
        with trio.fail_after(timeout):
            while True:
                station = self._current
                if station is not None and station.ws.closed is None:
                    return station
                with trio.move_on_after(0.05):
                    await self._changed.wait()

    async def call(self, action: str, payload: Payload, *, within: float = 30.0) -> Payload:
        """Send until acknowledged (new message id per try); fails the caller after `within` seconds."""
        with trio.fail_after(within):
            while True:
                station = await self.wait_connected(within)
                connection = self.connections
                sent = trio.current_time()
                try:
                    result = await station.call(action, payload, timeout=self.call_timeout)
                except CallErrorReply as exc:
                    self._attempt(action, payload, f"CallError:{exc.code}", connection)
                    if exc.code not in _RETRYABLE_ERRORS:
                        raise
                    await trio.sleep(0.2 + 0.3 * self.rng.random())
                    continue
                except trio.TooSlowError:
                    self._attempt(action, payload, "timeout", connection)
                    if self._current is station:
                        self.drop()
                    continue
                except (ConnectionError, ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
                    self._attempt(action, payload, "interrupted", connection)
                    await self._wait_not_current(station)
                    continue
                self.acked.append(Acked(action, payload, result, connection, sent, trio.current_time()))
                return result

    def _attempt(self, action: str, payload: Payload, outcome: str, connection: int) -> None:
        self.attempts.append(Attempt(action, payload, outcome, connection, trio.current_time()))

    async def _wait_not_current(self, station: SimulatedStation) -> None:
        while self._current is station:
            with trio.move_on_after(0.05):
                await self._changed.wait()


async def run_stations(nursery: trio.Nursery, stations: Iterable[FirmwareStation]) -> None:
    for station in stations:
        await nursery.start(station.run)


async def wait_all_owned(
    cluster: ReplicaCluster, station_ids: Iterable[str], *, not_by: Iterable[str] = (), timeout: float = 15.0
) -> dict[str, str]:
    """Until every station is owned by a replica not in `not_by`; returns station -> owner."""
    wanted = set(station_ids)
    banned = set(not_by)
    last: dict[str, str] = {}

    async def all_owned() -> bool:
        nonlocal last
        last = await cluster.owners()
        return all(last.get(s) is not None and last[s] not in banned for s in wanted)

    try:
        await wait_for(all_owned, timeout, "every station owned")
    except AssertionError:
        missing = {s: last.get(s) for s in wanted if last.get(s) is None or last[s] in banned}
        raise AssertionError(f"not all stations owned within {timeout}s; wrong/missing: {missing}") from None
    return {s: last[s] for s in wanted}


def ownership_violations(audit: list[dict[str, Any]]) -> list[str]:
    """Check the audit trail for any write by a replica that did not hold the station at that instant.

    Sound because of how the trail is built: each audited write row records the writing replica (its session
    setting, set from outside the product) and the station's fence row as read *inside the writing
    transaction*; fence tokens are allocated by Postgres per accepted claim (previous + 1), so they only grow.
    Rules:
    1. a fence change is made by the node it names, and a station's fence tokens strictly increase;
    2. every write was made by the node holding the station's current fence (writer == fence_node);
    3. in audit order (a sequence drawn inside the transactions, which the fence row lock serialises per
       station), the fence a station's writes saw never goes back: once a newer owner claimed the station,
       no write under an older owner's reign follows;
    4. every write saw the station's newest fence recorded before it in audit order (the newest token).
    Two replicas serving one station at once would break 2, 3 or 4 as soon as the older one wrote anything.
    """
    problems: list[str] = []
    fences: dict[str, int] = {}
    seen_by_write: dict[str, int] = {}
    for row in audit:
        sid = row["station_id"]
        if row["kind"] == "fence":
            if row["writer"] != row["fence_node"]:
                problems.append(f"fence {row['fence']} for {sid} recorded by {row['writer']} for {row['fence_node']}")
            if sid in fences and row["fence"] < fences[sid]:
                problems.append(f"fence for {sid} went back from {fences[sid]} to {row['fence']} (seq {row['seq']})")
            fences[sid] = row["fence"]
            continue
        if row["fence"] is None:
            problems.append(f"{row['kind']} write for {sid} by {row['writer']} with no fence recorded")
            continue
        if row["writer"] != row["fence_node"]:
            problems.append(
                f"{row['kind']} write for {sid} by {row['writer']} while {row['fence_node']} held fence "
                f"{row['fence']} (seq {row['seq']})"
            )
        if row["fence"] < seen_by_write.get(sid, 0):
            problems.append(
                f"{row['kind']} write for {sid} by {row['writer']} under fence {row['fence']} after a write "
                f"under newer fence {seen_by_write[sid]} (seq {row['seq']})"
            )
        if row["fence"] != fences.get(sid):
            problems.append(
                f"{row['kind']} write for {sid} by {row['writer']} under fence {row['fence']}, but the newest "
                f"recorded fence was {fences.get(sid)} (seq {row['seq']})"
            )
        seen_by_write[sid] = max(seen_by_write.get(sid, 0), row["fence"])
    return problems
