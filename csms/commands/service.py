"""Operator commands: validate, record, route to the replica that owns the station, and record the answer.

Routing: the replica that receives the API request looks the owner up in etcd; if it is the owner it sends the
OCPP call itself, otherwise it forwards to the owner's internal endpoint. If ownership moves while a command is
in flight, the caller still gets a definite answer: idempotent actions are retried once on the new owner, the
others are reported as `unknown_outcome` (the station may or may not have acted), never left hanging. The
error code says why: `OwnershipMoved` (a replica closed the connection) or `StationDisconnected` (the station
dropped it mid-call, as a station does when it carries out a hard Reset).

Versions: a payload is validated against the station's negotiated protocol (its latest connection) and the
command carries that protocol to the owner, which sends it only on a connection of the same protocol (a
station that reconnected with another version in between gets nothing it would misread). Everything else
about routing is version-agnostic.

Guards: a command may carry a guard (a fence key and token issued by another module, e.g. a site's computing
replica). The replica that executes it checks the token is still current immediately before sending, through
the ``guard_check`` it was given, and refuses otherwise: status `superseded`, recorded, nothing sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from cluster import Coordinator, Owner
from csms.commands.actor import Actor
from csms.commands.catalogue import IDEMPOTENT_ACTIONS, PROTOCOLS, actions, catalogue, validator_for, version_of
from csms.commands.errors import CommandRejected, ForwardFailed, NotConnectedHere, ProtocolChanged
from csms.commands.store import CommandStore, Finished, NewCommand
from csms.ocpp import CallErrorReceived, CallQueueFull, OcppError, SessionClosed

log = logging.getLogger(__name__)

Payload = dict[str, Any]
# Sends an OCPP call on this replica's own connection to the station, if that connection speaks the given
# protocol: (station_id, protocol, action, payload, timeout); raises NotConnectedHere or ProtocolChanged.
LocalCall = Callable[[str, str, str, Payload, float], Awaitable[Payload]]
# Checks beyond the schema (e.g. charging profile rules): (protocol, action, payload); raises ValueError.
ExtraCheck = Callable[[str, str, Payload], None]
# Domain bookkeeping of a command, with its record: before it is sent (recorded, not yet answered) and after.
CommandHook = Callable[[Payload], Awaitable[None]]
# Whether a guard's token is still current: (key, token) -> bool. Commands never read the issuer's tables.
GuardCheck = Callable[[str, int], Awaitable[bool]]

MAX_ROUTING_ATTEMPTS = 10


MAX_BATCH = 64  # commands in one batch: the owner sends them all at once, so this bounds its fan-out


class Forwarder(Protocol):
    async def execute(self, owner: Owner, request: ExecuteRequest) -> ExecuteResult: ...

    async def execute_batch(self, owner: Owner, requests: list[ExecuteRequest]) -> list[ExecuteResult]: ...


@dataclass(frozen=True)
class Guard:
    """A fence the command may be sent under only while ``token`` is the current token of ``key``."""

    key: str
    token: int


@dataclass(frozen=True)
class BatchItem:
    """One command of a batch: the protocol it is meant for (the station's, as the sender last read it)."""

    station_id: str
    action: str
    payload: Payload
    protocol: str | None


@dataclass(frozen=True)
class ExecuteRequest:
    command_id: int
    station_id: str
    action: str
    payload: Payload
    timeout: float
    protocol: str = "ocpp1.6"
    guard: Guard | None = None

    def as_json(self) -> Payload:
        return {
            "command_id": self.command_id,
            "station_id": self.station_id,
            "action": self.action,
            "payload": self.payload,
            "timeout": self.timeout,
            "protocol": self.protocol,
            "guard": None if self.guard is None else {"key": self.guard.key, "token": self.guard.token},
        }


@dataclass(frozen=True)
class ExecuteResult:
    """What the executing replica saw: status is completed, call_error, timeout, moved, failed or superseded."""

    status: str
    node_id: str
    result: Payload | None = None
    error: Payload | None = None

    def as_json(self) -> Payload:
        return {"status": self.status, "node_id": self.node_id, "result": self.result, "error": self.error}

    @classmethod
    def from_json(cls, data: Payload) -> ExecuteResult:
        return cls(data["status"], data["node_id"], data.get("result"), data.get("error"))


class CommandService:
    def __init__(
        self,
        store: CommandStore,
        coordinator: Coordinator,
        local_call: LocalCall,
        forwarder: Forwarder,
        *,
        call_timeout: float,
        max_async: int = 64,
        extra_check: ExtraCheck | None = None,
        on_requested: CommandHook | None = None,
        on_completed: CommandHook | None = None,
        guard_check: GuardCheck | None = None,
    ) -> None:
        self._store = store
        self._coordinator = coordinator
        self._local_call = local_call
        self._forwarder = forwarder
        self._call_timeout = call_timeout
        self._async_slots = trio.Semaphore(max_async)
        self._nursery: trio.Nursery | None = None
        self._extra_check = extra_check
        self._on_requested = on_requested
        self._on_completed = on_completed
        self._guard_check = guard_check

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Owns the background tasks of async commands."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def validate(self, action: str, payload: Payload, protocol: str | None) -> str:
        """Check a payload for a station speaking `protocol`; returns the protocol it suits.

        A station that never connected (None) has no version yet: the payload must suit one of them (checked
        oldest first, so a 1.6 payload keeps its 1.6 answer); it will be found offline anyway.
        """
        candidates = [protocol] if protocol is not None else [p for p in PROTOCOLS if action in actions(p)]
        if protocol is not None and (protocol not in PROTOCOLS or action not in actions(protocol)):
            known = sorted(actions(protocol)) if protocol in PROTOCOLS else []
            raise CommandRejected(
                f"{action} is not an OCPP {version_of(protocol)} operation a CSMS sends to a station"
                f" (the station speaks {protocol})",
                {"protocol": protocol, "allowed": {protocol: known}},
            )
        if not candidates:
            raise CommandRejected(
                f"{action} is not an operation a CSMS sends to a station in any OCPP version"
                f" ({', '.join(version_of(p) for p in PROTOCOLS)})",
                {"protocol": None, "allowed": catalogue()},
            )
        first: CommandRejected | None = None
        for candidate in candidates:
            try:
                self._check(candidate, action, payload)
                return candidate
            except CommandRejected as exc:
                first = first or exc
        assert first is not None
        raise first

    def _check(self, protocol: str, action: str, payload: Payload) -> None:
        try:
            validator_for(protocol).validate_request(action, payload)
        except OcppError as exc:
            raise CommandRejected(
                f"{action} payload invalid: {exc.description}", {"code": exc.code, "protocol": protocol}
            ) from None
        if self._extra_check is not None:
            try:
                self._extra_check(protocol, action, payload)
            except ValueError as exc:
                raise CommandRejected(f"{action} payload invalid: {exc}", {"protocol": protocol}) from None
            except OcppError as exc:  # a value storage cannot hold (the domain check)
                raise CommandRejected(
                    f"{action} payload invalid: {exc.description}", {"code": exc.code, "protocol": protocol}
                ) from None

    async def submit(
        self,
        station_id: str,
        action: str,
        payload: Payload,
        requested_by: Actor,
        *,
        protocol: str | None,
        wait: bool = True,
        timeout: float | None = None,
        audit_payload: Payload | None = None,
        guard: Guard | None = None,
    ) -> Payload:
        """Validate for the station's protocol (None: not known yet), record and run a command; with
        wait=False return the pending record at once. `audit_payload` is what the audit trail (and the live feed)
        shows instead of the payload when that holds a secret (a new station password)."""
        protocol = self.validate(action, payload, protocol)
        seconds = min(timeout or self._call_timeout, 300.0)
        recorded = payload if audit_payload is None else audit_payload
        command_id = await self._store.create(station_id, protocol, action, recorded, requested_by, not wait)
        request = ExecuteRequest(command_id, station_id, action, payload, seconds, protocol, guard)
        await self._requested(request, recorded)
        if not wait:
            if self._nursery is None or not self._async_slots.value:
                busy = {"code": "Busy", "description": "too many asynchronous commands in flight; retry later"}
                return await self._finished(await self._store.finish(command_id, "failed", error=busy))
            record = await self._store.get(command_id)  # read before the call starts: a fast answer can't race it
            assert record is not None
            await self._async_slots.acquire()
            self._nursery.start_soon(self._run_async, request)
            return record
        return await self._route(request)

    async def submit_batch(
        self, items: list[BatchItem], requested_by: Actor, *, guard: Guard | None = None
    ) -> list[Payload | CommandRejected]:
        """Many commands (at most MAX_BATCH) under one guard, as one internal call per owner replica: validated
        like ``submit``, recorded in one transaction, owners looked up together, each owner sends its calls
        concurrently, the answers recorded in one transaction. A command whose owner moved goes the single way
        (``_route``'s retries)."""
        if len(items) > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} commands")
        answers: dict[int, Payload | CommandRejected] = {}
        valid: list[tuple[int, str]] = []
        for i, item in enumerate(items):
            try:
                valid.append((i, self.validate(item.action, item.payload, item.protocol)))
            except CommandRejected as exc:
                answers[i] = exc
        started = time.monotonic()
        new = [NewCommand(items[i].station_id, protocol, items[i].action, items[i].payload) for i, protocol in valid]
        ids = await self._store.create_many(new, requested_by, False) if new else []
        requests = {
            i: ExecuteRequest(command_id, c.station_id, c.action, c.payload, self._call_timeout, c.protocol, guard)
            for (i, _), c, command_id in zip(valid, new, ids, strict=True)
        }
        for request in requests.values():
            await self._requested(request, request.payload)
        owners = await self._coordinator.owners_of(sorted({r.station_id for r in requests.values()}))
        by_node: dict[str, list[int]] = {}
        for i, request in requests.items():
            owner = owners.get(request.station_id)
            by_node.setdefault(owner.node_id if owner else "", []).append(i)
        outcomes: dict[int, ExecuteResult] = {}

        async def on_owner(indexes: list[int]) -> None:
            owner = owners[requests[indexes[0]].station_id]
            results = await self._execute_batch_on(owner, [requests[i] for i in indexes])
            outcomes.update(zip(indexes, results, strict=True))

        async with trio.open_nursery() as nursery:
            for node, indexes in by_node.items():
                if node:
                    nursery.start_soon(on_owner, indexes)
        done = [i for i in requests if i in outcomes and outcomes[i].status != "moved"]
        finished = [
            Finished(
                requests[i].command_id,
                outcomes[i].status,
                outcomes[i].result,
                outcomes[i].error,
                _ms(started),
                outcomes[i].node_id,
            )
            for i in done
        ]
        records = await self._store.finish_many(finished) if finished else []
        completed = dict(zip(done, records, strict=True))
        answers.update(completed)

        async def one(i: int) -> None:
            if i in completed:
                await self._finished(completed[i])
            else:  # not connected as far as etcd knew, or the owner moved: the single way
                answers[i] = await self._route(requests[i])

        async with trio.open_nursery() as nursery:
            for i in requests:
                nursery.start_soon(one, i)
        return [answers[i] for i in range(len(items))]

    async def _execute_batch_on(self, owner: Owner, requests: list[ExecuteRequest]) -> list[ExecuteResult]:
        if owner.node_id == self._coordinator.node_id:
            return await self.execute_batch_here(requests)
        try:
            return await self._forwarder.execute_batch(owner, requests)
        except ForwardFailed as exc:
            log.warning("batch forward to owner failed", extra={"node": owner.node_id, "error": str(exc)})
            error = {"maybe_sent": exc.sent, "description": str(exc)}
            return [ExecuteResult("moved", owner.node_id, error=error) for _ in requests]

    async def execute_batch_here(self, requests: list[ExecuteRequest]) -> list[ExecuteResult]:
        """The owner side of a batch: every call starts at once (a batch is at most MAX_BATCH), each right
        after its guard was found current (one check per guard, shared by the calls it covers)."""
        if len(requests) > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} commands")
        holds = {g: await self._guard_holds(g) for g in {r.guard for r in requests if r.guard is not None}}
        results: list[ExecuteResult | None] = [None] * len(requests)

        async def one(i: int, request: ExecuteRequest) -> None:
            if request.guard is not None and not holds[request.guard]:
                results[i] = _superseded(request.guard, self._coordinator.node_id)
            else:
                results[i] = await self._send_here(request)

        async with trio.open_nursery() as nursery:
            for i, request in enumerate(requests):
                nursery.start_soon(one, i, request)
        return [r for r in results if r is not None]

    async def _requested(self, request: ExecuteRequest, recorded: Payload) -> None:
        if self._on_requested is not None:
            await self._on_requested(
                {
                    "id": request.command_id,
                    "station_id": request.station_id,
                    "protocol": request.protocol,
                    "action": request.action,
                    "payload": recorded,
                }
            )

    async def _run_async(self, request: ExecuteRequest) -> None:
        try:
            await self._route(request)
        except Exception:
            log.exception("async command failed", extra={"command_id": request.command_id})
        finally:
            self._async_slots.release()

    async def _route(self, request: ExecuteRequest) -> Payload:
        started = time.monotonic()
        attempts = 0
        delivered = False  # a try that may have reached the station
        disconnected = ""  # the replica on which the station dropped the connection during a try that reached it
        previous: Owner | None = None
        while True:
            owner = await self._find_owner(request.station_id, not_like=previous)
            if owner is None:
                if disconnected:  # sent, then the station left and has not come back
                    return await self._unknown_outcome(request, started, disconnected, attempts, disconnected=True)
                return await self._offline(request, started, attempts, f"station {request.station_id} is not connected")
            attempts += 1
            outcome = await self._execute_on(owner, request)
            if outcome.status != "moved":
                record = await self._store.finish(
                    request.command_id,
                    outcome.status,
                    result=outcome.result,
                    error=outcome.error,
                    latency_ms=_ms(started),
                    executed_by=outcome.node_id,
                    attempts=attempts,
                )
                return await self._finished(record)
            maybe_sent = bool(outcome.error and outcome.error.get("maybe_sent"))
            if maybe_sent:
                resent_already = delivered
                delivered = True
                left = bool(outcome.error and outcome.error.get("disconnected") is True)
                disconnected = outcome.node_id if left else ""
                if resent_already or request.action not in IDEMPOTENT_ACTIONS[request.protocol]:
                    return await self._unknown_outcome(request, started, outcome.node_id, attempts, disconnected=left)
                previous = owner  # wait for the station to land on another connection, then send once more
            else:
                # Not sent: the owner key moved ahead of the connection (a claim is registering) or the
                # owner went away. Ask again shortly, bounded in attempts and time.
                if attempts >= MAX_ROUTING_ATTEMPTS or time.monotonic() - started > request.timeout:
                    if delivered:
                        return await self._unknown_outcome(
                            request, started, outcome.node_id, attempts, disconnected=bool(disconnected)
                        )
                    return await self._offline(
                        request, started, attempts, "no replica held a live connection to the station; not sent"
                    )
                previous = None
                await trio.sleep(0.1)

    async def _offline(self, request: ExecuteRequest, started: float, attempts: int, description: str) -> Payload:
        record = await self._store.finish(
            request.command_id,
            "offline",
            error={"code": "StationOffline", "description": description},
            latency_ms=_ms(started),
            attempts=attempts,
        )
        return await self._finished(record)  # never sent: what on_requested put on record may be withdrawn

    async def _finished(self, record: Payload) -> Payload:
        """Every command ``on_requested`` saw ends here, except one whose outcome is unknown (it may have
        reached the station)."""
        if self._on_completed is not None:
            await self._on_completed(record)
        return record

    async def _unknown_outcome(
        self, request: ExecuteRequest, started: float, node_id: str, attempts: int, *, disconnected: bool
    ) -> Payload:
        if disconnected:
            error = {"code": "StationDisconnected", "description": _disconnected(request)}
        else:
            error = {
                "code": "OwnershipMoved",
                "description": "the station moved to another replica while the command was in flight;"
                " it may or may not have been carried out",
            }
        return await self._store.finish(
            request.command_id,
            "unknown_outcome",
            error=error,
            latency_ms=_ms(started),
            executed_by=node_id,
            attempts=attempts,
        )

    async def _find_owner(self, station_id: str, *, not_like: Owner | None) -> Owner | None:
        """The current owner; after a move, wait briefly for the station to land somewhere new."""
        owner = await self._coordinator.owner_of(station_id)
        if not_like is None:
            return owner
        with trio.move_on_after(min(10.0, self._call_timeout)):
            while owner is None or owner.connection_id == not_like.connection_id:
                await trio.sleep(0.2)
                owner = await self._coordinator.owner_of(station_id)
            return owner
        return None

    async def _execute_on(self, owner: Owner, request: ExecuteRequest) -> ExecuteResult:
        if owner.node_id == self._coordinator.node_id:
            return await self.execute_here(request)
        try:
            return await self._forwarder.execute(owner, request)
        except ForwardFailed as exc:
            log.warning("forward to owner failed", extra={"node": owner.node_id, "error": str(exc)})
            return ExecuteResult("moved", owner.node_id, error={"maybe_sent": exc.sent, "description": str(exc)})

    async def execute_here(self, request: ExecuteRequest) -> ExecuteResult:
        """Send the call on this replica's connection (the owner side of a forwarded command)."""
        if request.guard is not None and not await self._guard_holds(request.guard):
            return _superseded(request.guard, self._coordinator.node_id)
        return await self._send_here(request)

    async def _send_here(self, request: ExecuteRequest) -> ExecuteResult:
        node = self._coordinator.node_id
        try:
            result = await self._local_call(
                request.station_id, request.protocol, request.action, request.payload, request.timeout
            )
        except NotConnectedHere:
            return ExecuteResult("moved", node, error={"maybe_sent": False, "description": "not connected here"})
        except ProtocolChanged as exc:
            return ExecuteResult(
                "failed",
                node,
                error={
                    "code": "ProtocolChanged",
                    "description": f"the station reconnected speaking {exc.protocol}; the command was validated"
                    f" for {request.protocol} and was not sent",
                },
            )
        except SessionClosed as exc:
            return ExecuteResult(
                "moved", node, error={"maybe_sent": True, "disconnected": exc.by_station, "description": str(exc)}
            )
        except CallErrorReceived as exc:
            return ExecuteResult(
                "call_error", node, error={"code": exc.code, "description": exc.description, "details": exc.details}
            )
        except trio.TooSlowError:
            return ExecuteResult(
                "timeout",
                node,
                error={"code": "Timeout", "description": f"no answer from the station within {request.timeout:g}s"},
            )
        except CallQueueFull as exc:
            return ExecuteResult("failed", node, error={"code": "Busy", "description": str(exc)})
        except OcppError as exc:  # InvalidResponse: the station's answer broke the schema
            return ExecuteResult(
                "call_error", node, error={"code": exc.code, "description": exc.description, "details": exc.details}
            )
        return ExecuteResult("completed", node, result=result)

    async def _guard_holds(self, guard: Guard) -> bool:
        """No check wired (or the check fails): refuse, since a guarded command must never go out unchecked."""
        if self._guard_check is None:
            return False
        try:
            return await self._guard_check(guard.key, guard.token)
        except Exception:
            log.warning("guard check failed: not sent", extra={"key": guard.key}, exc_info=True)
            return False

    async def get(self, command_id: int) -> Payload | None:
        return await self._store.get(command_id)

    async def page(self, **filters: Any) -> list[Payload]:
        return await self._store.page(**filters)

    async def expire_stale(self) -> int:
        """Leader job: pending commands whose executor died are closed as unknown_outcome."""
        return await self._store.expire_stale(older_than_seconds=max(60.0, 3 * self._call_timeout))


def _superseded(guard: Guard, node: str) -> ExecuteResult:
    description = f"{guard.key}: token {guard.token} is no longer current; not sent"
    return ExecuteResult("superseded", node, error={"code": "FenceSuperseded", "description": description})


def _disconnected(request: ExecuteRequest) -> str:
    if request.action == "Reset":
        kind = str(request.payload.get("type", "")).lower()
        return f"station disconnected after Reset — expected for a {kind} reset: it restarts without answering first"
    return f"the station disconnected before answering {request.action}; it may or may not have carried it out"


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)
