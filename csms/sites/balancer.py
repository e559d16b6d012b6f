"""One site's rounds on the replica that computes it: measure, plan, then move the budget without going over.

A round: read the site, its open sessions and recent meter values; plan targets (allocation.plan); send every
change that does not raise a station's held amount first and wait for the answers; then send the raises that
still fit under the limit, counting stations as the safety rules say (a refused or unanswered change: the
station at its max; a raise sent but not answered: at the new value). What stations hold is in Postgres before
any raise is sent, so a replica taking the site over after a crash starts from numbers that are never too low.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import trio

from csms.sites.allocation import Demand, Held, Target, held_amps, plan, under_use_cap
from csms.sites.fences import GUARD_PREFIX, SiteFenceSuperseded
from csms.sites.model import SiteSpec, StationSpec
from csms.sites.profiles import V16, allocation_profile, failsafe_profile, release_profile
from csms.sites.store import Allocation, Round, SiteStore

log = logging.getLogger(__name__)

Payload = dict[str, Any]
SETTLE = timedelta(seconds=0.3)  # a reading received this soon after a new limit was accepted may predate it


@dataclass(frozen=True)
class Session:
    connector_id: int  # 1.6: the connector; 2.0.1: the EVSE
    transaction_id: int  # the CSMS's id (what a held TxProfile is recorded against)
    station_tx_id: str | None = None  # 2.0.1: the station's own transactionId, which its TxProfile names


@dataclass(frozen=True)
class Reading:
    measurand: str
    phase: str
    unit: str
    value: str
    received_at: datetime


Delivery = tuple[str, str, Payload, str]  # station, action, payload, protocol
# accepted: the station applied it; rejected: it said no (or a CallError); offline: not sent; unknown: maybe applied
Outcome = str


@dataclass(frozen=True)
class SiteInputs:
    """What the site needs from the other modules, wired in the composition root."""

    sessions: Callable[[list[str]], Awaitable[dict[str, list[Session]]]]  # one per charging EVSE, newest first
    readings: Callable[[list[str], float], Awaitable[dict[str, list[Reading]]]]
    # (station, action, payload, protocol) each, by, (guard key, token): one outcome per item, in order. Sent as
    # one batch per owner replica; the owner sends only while the token is the site's current one (else
    # "superseded": not sent)
    deliver: Callable[[list[Delivery], str, tuple[str, int]], Awaitable[list[Outcome]]]
    protocols: Callable[[list[str]], Awaitable[dict[str, str]]]  # station -> "ocpp1.6" / "ocpp2.0.1"
    connected: Callable[[list[str]], Awaitable[set[str]]]  # stations some replica holds a connection to


class SiteObserver(Protocol):
    def round(self, site_id: str, r: Round) -> None: ...

    def forget(self, site_id: str) -> None: ...


class NullSiteObserver:
    def round(self, site_id: str, r: Round) -> None:
        pass

    def forget(self, site_id: str) -> None:
        pass


@dataclass(frozen=True)
class BalancerSettings:
    interval: float = 5.0  # seconds between rounds when nothing wakes a site
    margin: float = 1.0  # A a station drawing below its allocation keeps to grow back
    hysteresis: float = 0.5  # A: smaller raises wait for a bigger change
    slack: float = 1.0  # A: small reductions adding up to this (or 1 % of the limit) are not sent
    reading_age: float = 60.0  # seconds a meter reading counts as current
    batch: int = 64  # changes in one delivery (the commands module's MAX_BATCH); a round's batches go together


@dataclass
class _Change:
    station_id: str
    component: str  # "default", "tx" (the newest session's, tracked in Held) or "evse" (another session's share)
    amps: float
    action: str
    payload: Payload
    protocol: str


def measured_amps(
    readings: Sequence[Reading], voltage: float, phases: int, *, after: datetime | None = None
) -> float | None:
    """Current.Import (the highest phase) if the station sends it, else Power.Active.Import over the phases; only
    readings received ``after`` a time (the last change of its allocation: older ones measured the old limit)."""
    if after is not None:
        readings = [r for r in readings if r.received_at > after]
    currents = [float(r.value) for r in readings if r.measurand == "Current.Import" and _number(r.value)]
    if currents:
        return max(currents)
    watts = [
        float(r.value) * (1000 if r.unit == "kW" else 1)
        for r in readings
        if r.measurand == "Power.Active.Import" and _number(r.value)
    ]
    return sum(watts) / (voltage * phases) if watts else None


def _number(raw: str) -> bool:
    try:
        return float(raw) >= 0
    except ValueError:
        return False


def _with(held: Held, change: _Change, *, pending: bool, session: Session | None) -> Held:
    if change.component == "evse":  # the station's cap bounds it: not part of what the station is counted at
        return held
    if change.component == "default":
        if pending:
            return replace(held, default_pending=change.amps)
        return replace(held, default_limit=change.amps, default_pending=None)
    assert session is not None
    base = held if held.transaction_id == session.transaction_id else replace(held, tx_limit=None, tx_pending=None)
    base = replace(base, transaction_id=session.transaction_id)
    if pending:
        return replace(base, tx_pending=change.amps)
    return replace(base, tx_limit=change.amps, tx_pending=None)


class SiteBalancer:
    def __init__(
        self,
        store: SiteStore,
        inputs: SiteInputs,
        node_id: str,
        settings: BalancerSettings,
        observer: SiteObserver | None = None,
    ) -> None:
        self._store = store
        self._inputs = inputs
        self._node_id = node_id
        self._s = settings
        self._observer: SiteObserver = observer or NullSiteObserver()
        self._wake: dict[str, trio.Event] = {}
        self._fence: dict[str, int] = {}  # site -> the token this replica computes it under
        self._site_of: dict[str, str] = {}  # station -> site, for the sites computed here
        self._computing_changed = trio.Event()
        self._settled_after: dict[str, datetime] = {}  # station -> when its last allocation change has settled
        self._awaiting: set[str] = set()  # stations whose next reading shows how they use a new allocation
        self._retry_at: dict[str, float] = {}  # stuck station -> when to ask it again
        self.rounds = 0

    async def wait_computing(self, busy: bool) -> None:
        """Until this replica computes some site (busy) or none (not busy)."""
        while bool(self._wake) != busy:
            await self._computing_changed.wait()

    def _changed(self) -> None:
        self._computing_changed.set()
        self._computing_changed = trio.Event()

    def note(self, payload: str) -> None:
        """A change-feed notification ("tx <station>", "site <id>"): wake the site it concerns."""
        kind, _, key = payload.partition(" ")
        if kind == "site":
            site: str | None = key
        elif kind == "tx" or (kind == "meter" and key in self._awaiting):
            site = self._site_of.get(key)  # a session started or ended; a reading of a station's new limit
        else:
            return
        if site is not None and site in self._wake:
            self._wake[site].set()

    def wake_all(self) -> None:
        for event in self._wake.values():
            event.set()

    async def compute(self, site_id: str, fence: int) -> None:
        """The site's singleton work under its token: rounds until cancelled (the key moved), the site is gone or
        the token is superseded (another replica took the site: every write and send of ours is refused)."""
        self._fence[site_id] = fence
        self._wake[site_id] = trio.Event()
        self._changed()
        try:
            while True:
                self._wake[site_id] = trio.Event()
                try:
                    if not await self.round(site_id):
                        return
                except SiteFenceSuperseded:
                    log.warning("site taken by another replica: stopped", extra={"site_id": site_id, "fence": fence})
                    return
                except Exception:
                    log.exception("site round failed", extra={"site_id": site_id})
                with trio.move_on_after(self._s.interval):
                    await self._wake[site_id].wait()
                await trio.sleep(0.02)  # let a burst of notifications land in one round
        finally:
            del self._wake[site_id]
            del self._fence[site_id]
            for station in [st for st, site in self._site_of.items() if site == site_id]:
                self._settled_after.pop(station, None)
                self._awaiting.discard(station)
            self._changed()
            for station, site in list(self._site_of.items()):
                if site == site_id:
                    del self._site_of[station]
            self._observer.forget(site_id)

    async def round(self, site_id: str) -> bool:
        """One round; False if the site no longer exists."""
        started = trio.current_time()
        spec = await self._store.get(site_id)
        if spec is None:
            return False
        for s in spec.stations:
            self._site_of[s.station_id] = site_id
        ids = [s.station_id for s in spec.stations]
        evses = await self._inputs.sessions(ids)
        sessions = {station: found[0] for station, found in evses.items() if found}  # what Held's TxProfile names
        readings = await self._inputs.readings(ids, self._s.reading_age)
        rows = await self._store.allocations(site_id)
        await self._release_removed(site_id, spec, rows)
        measured = {
            s.station_id: measured_amps(readings.get(s.station_id, []), spec.voltage, s.phases) for s in spec.stations
        }
        settled = {
            s.station_id: measured_amps(
                readings.get(s.station_id, []), spec.voltage, s.phases, after=self._settled_after.get(s.station_id)
            )
            for s in spec.stations
        }
        self._awaiting.difference_update(station for station, amps in settled.items() if amps is not None)
        held = {s.station_id: self._current(rows.get(s.station_id), sessions.get(s.station_id)) for s in spec.stations}
        limit = spec.limit_at(datetime.now(UTC))
        shares = plan(
            limit,
            self._demands(spec, held, evses, settled),
            self._failsafe(spec, limit),
            slack=max(self._s.slack, 0.01 * limit)
            if spec.unit == "A"
            else max(self._s.slack * spec.voltage, 0.01 * limit),
        )
        targets = _per_station(spec, shares, evses)
        online = await self._inputs.connected(ids)  # an offline station keeps what it holds: nothing to send
        known = await self._inputs.protocols(sorted(online))
        protocols = {station_id: known.get(station_id, V16) for station_id in online}
        changes = self._changes(spec, held, targets, evses, shares, protocols)
        raises = [c for c in changes if self._raises(held[c.station_id], c, sessions.get(c.station_id), spec)]
        lowers = [c for c in changes if c not in raises]
        forced = {c.station_id for c in changes if held[c.station_id].stuck}
        if lowers:
            await self._send(site_id, spec, lowers, held, sessions, forced, raising=False)
        wanted = len(raises)
        lowered_at = trio.current_time()
        raises = self._fitting(spec, limit, held, sessions, raises)
        if raises:
            for c in raises:
                held[c.station_id] = _with(held[c.station_id], c, pending=True, session=sessions.get(c.station_id))
            await self._save(site_id, spec, held, sessions, measured)  # pending is durable before anything is sent
            await self._send(site_id, spec, raises, held, sessions, forced, raising=True)
        await self._save(site_id, spec, held, sessions, measured)
        await self._record(site_id, spec, limit, held, sessions, measured, reallocated=bool(changes), started=started)
        self.rounds += 1
        if changes:
            log.info(
                "site reallocated",
                extra={
                    "site_id": site_id,
                    "lowered": len(lowers),
                    "raised": len(raises),
                    "raises_held_back": wanted - len(raises),
                    "lower_seconds": round(lowered_at - started, 3),
                    "seconds": round(trio.current_time() - started, 3),
                },
            )
        return True

    def _current(self, row: Allocation | None, session: Session | None) -> Held:
        """What the station holds now: a TxProfile lapses with its transaction."""
        held = row.held if row is not None else Held()
        if session is None or held.transaction_id != session.transaction_id:
            held = replace(held, transaction_id=None, tx_limit=None, tx_pending=None)
        return held

    def _failsafe(self, spec: SiteSpec, limit: float) -> dict[str, float]:
        per_station = limit / sum(spec.weight(s) for s in spec.stations)
        if spec.failsafe is not None:
            per_station = min(per_station, spec.failsafe)
        return {s.station_id: per_station for s in spec.stations}

    def _demands(
        self,
        spec: SiteSpec,
        held: Mapping[str, Held],
        evses: Mapping[str, list[Session]],
        measured: Mapping[str, float | None],
    ) -> list[Demand]:
        """One demand per charging EVSE (a station's max and measured draw split evenly over them, so its EVSEs'
        shares sum to at most its max), one per idle station; a station counted at its max stays one demand."""
        demands = []
        for s in spec.stations:
            h = held[s.station_id]
            found = evses.get(s.station_id, [])
            counted_at_max = h.stuck or h.default_limit is None
            cap = max(under_use_cap(h.tx_limit, measured[s.station_id], s.max_current, self._s.margin), s.min_current)
            n = len(found) if len(found) > 1 and not counted_at_max else 1
            ids = [_evse_key(s.station_id, e.connector_id) for e in found] if n > 1 else [s.station_id]
            for demand_id in ids:
                demands.append(
                    Demand(
                        demand_id,
                        s.min_current,
                        s.max_current / n,
                        s.priority,
                        spec.weight(s),
                        bool(found),
                        max(cap / n, s.min_current),
                        counted_at_max,
                        h.tx_limit if h.tx_pending is None and n == 1 else None,
                    )
                )
        return demands

    def _changes(
        self,
        spec: SiteSpec,
        held: Mapping[str, Held],
        targets: Mapping[str, Target],
        evses: Mapping[str, list[Session]],
        shares: Mapping[str, Target],
        protocols: Mapping[str, str],
    ) -> list[_Change]:
        changes = []
        now = trio.current_time()
        for s in spec.stations:
            found = evses.get(s.station_id, [])
            h, t, session = held[s.station_id], targets[s.station_id], found[0] if found else None
            protocol = protocols.get(s.station_id)
            if protocol is None:
                continue
            if h.stuck:  # counted at its max until it accepts: asked again once per interval, not every round
                if now < self._retry_at.get(s.station_id, 0.0):
                    continue
                self._retry_at[s.station_id] = now + self._s.interval
            try:
                if h.stuck or self._differs(h.default_limit, t.default):
                    action, payload = failsafe_profile(protocol, t.default, s.phases)
                    changes.append(_Change(s.station_id, "default", t.default, action, payload, protocol))
                if t.tx is not None and session is not None and (h.stuck or self._differs(h.tx_limit, t.tx)):
                    transaction = session.station_tx_id or session.transaction_id
                    action, payload = allocation_profile(protocol, t.tx, s.phases, session.connector_id, transaction)
                    changes.append(_Change(s.station_id, "tx", t.tx, action, payload, protocol))
                if len(found) > 1 and any(c.station_id == s.station_id for c in changes):
                    changes.extend(_other_evses(s, found[1:], shares, protocol))
            except ValueError as exc:  # a protocol we cannot address: it holds nothing, so counts at its max
                log.warning("site station not managed", extra={"station_id": s.station_id, "error": str(exc)})
        return changes

    def _differs(self, current: float | None, target: float) -> bool:
        if current is None:
            return True
        return target < current - 1e-6 or target > current + self._s.hysteresis - 1e-6

    def _raises(self, held: Held, change: _Change, session: Session | None, spec: SiteSpec) -> bool:
        station = _station(spec, change.station_id)
        before = held_amps(held, station.max_current, session.transaction_id if session else None)
        after = _with(held, change, pending=False, session=session)
        return held_amps(after, station.max_current, session.transaction_id if session else None) > before + 1e-9

    def _total(self, spec: SiteSpec, held: Mapping[str, Held], sessions: Mapping[str, Session]) -> float:
        return sum(
            spec.weight(s) * held_amps(held[s.station_id], s.max_current, _tx(sessions, s.station_id))
            for s in spec.stations
        )

    def _fitting(
        self,
        spec: SiteSpec,
        limit: float,
        held: dict[str, Held],
        sessions: Mapping[str, Session],
        raises: list[_Change],
    ) -> list[_Change]:
        """The raises that keep the held total within the limit, highest priority first."""
        total = self._total(spec, held, sessions)
        trial = dict(held)
        fitting = []
        order = sorted(raises, key=lambda c: (-_station(spec, c.station_id).priority, c.station_id))
        for c in order:
            s = _station(spec, c.station_id)
            tx = _tx(sessions, c.station_id)
            before = spec.weight(s) * held_amps(trial[c.station_id], s.max_current, tx)
            candidate = _with(trial[c.station_id], c, pending=True, session=sessions.get(c.station_id))
            after = spec.weight(s) * held_amps(candidate, s.max_current, tx)
            if total - before + after <= limit + 1e-6:
                total += after - before
                trial[c.station_id] = candidate
                fitting.append(c)
        return fitting

    async def _send(
        self,
        site_id: str,
        spec: SiteSpec,
        changes: list[_Change],
        held: dict[str, Held],
        sessions: Mapping[str, Session],
        forced: set[str],
        *,
        raising: bool,
    ) -> None:
        outcomes: dict[int, Outcome] = {}

        async def chunk(start: int) -> None:
            part = changes[start : start + self._s.batch]
            answers = await self._deliver(site_id, [(c.station_id, c.action, c.payload, c.protocol) for c in part])
            outcomes.update((start + k, outcome) for k, outcome in enumerate(answers))

        async with trio.open_nursery() as nursery:
            for start in range(0, len(changes), self._s.batch):
                nursery.start_soon(chunk, start)
        failed: set[str] = set()
        for i, c in enumerate(changes):
            h, session, outcome = held[c.station_id], sessions.get(c.station_id), outcomes.get(i, "unknown")
            if c.component == "evse":  # the cap bounds the station whatever this EVSE holds
                continue
            if outcome == "accepted":
                held[c.station_id] = _with(h, c, pending=False, session=session)
                if c.component == "tx":
                    self._settled_after[c.station_id] = datetime.now(UTC) + SETTLE
                    self._awaiting.add(c.station_id)
                continue
            failed.add(c.station_id)
            # Never sent, or a raise refused: the station holds what it held.
            if outcome == "offline" or (raising and outcome == "rejected"):
                held[c.station_id] = _drop_pending(h, c.component)
            else:  # refused a reduction, or maybe applied: counted at its max until it accepts
                held[c.station_id] = replace(h, stuck=True)
            log.info(
                "site change not applied",
                extra={"site_id": site_id, "station_id": c.station_id, "component": c.component, "outcome": outcome},
            )
        if "superseded" in outcomes.values():
            raise SiteFenceSuperseded(site_id, self._fence[site_id])
        for station_id in forced - failed:
            if any(c.station_id == station_id for c in changes):
                held[station_id] = replace(held[station_id], stuck=False)

    async def _save(
        self,
        site_id: str,
        spec: SiteSpec,
        held: Mapping[str, Held],
        sessions: Mapping[str, Session],
        measured: Mapping[str, float | None],
    ) -> None:
        await self._store.save(
            site_id,
            self._fence[site_id],
            [
                Allocation(
                    s.station_id,
                    held[s.station_id],
                    sessions[s.station_id].connector_id if s.station_id in sessions else None,
                    measured.get(s.station_id),
                )
                for s in spec.stations
            ],
        )

    async def _record(
        self,
        site_id: str,
        spec: SiteSpec,
        limit: float,
        held: Mapping[str, Held],
        sessions: Mapping[str, Session],
        measured: Mapping[str, float | None],
        *,
        reallocated: bool,
        started: float,
    ) -> None:
        now = datetime.now(UTC)
        charging = [s for s in spec.stations if s.station_id in sessions]
        r = Round(
            computed_by=self._node_id,
            computed_at=now,
            limit_now=limit,
            allocated=self._total(spec, held, sessions),
            measured=sum(spec.weight(s) * (measured.get(s.station_id) or 0.0) for s in spec.stations),
            charging=len(charging),
            capped=sum(1 for s in charging if (held[s.station_id].tx_limit or 0.0) < s.max_current - 1e-6),
            reallocated_at=now if reallocated else None,
            seconds=trio.current_time() - started,
        )
        await self._store.save_round(site_id, self._fence[site_id], r)
        self._observer.round(site_id, r)

    async def _release_removed(self, site_id: str, spec: SiteSpec, rows: Mapping[str, Allocation]) -> None:
        """Stations taken off the site lose its failsafe (best effort) and are forgotten."""
        members = {s.station_id for s in spec.stations}
        removed = [station for station in rows if station not in members]
        known = await self._inputs.protocols(removed)
        releases: list[Delivery] = []
        for station_id in removed:
            protocol = known.get(station_id, V16)
            with contextlib.suppress(ValueError):
                releases.append((station_id, *release_profile(protocol), protocol))
        for start in range(0, len(releases), self._s.batch):
            await self._deliver(site_id, releases[start : start + self._s.batch])
        if removed:
            await self._store.forget(site_id, self._fence[site_id], removed)

    async def _deliver(self, site_id: str, items: list[Delivery]) -> list[Outcome]:
        guard = (GUARD_PREFIX + site_id, self._fence[site_id])
        return await self._inputs.deliver(items, f"site:{site_id}", guard)


def _evse_key(station_id: str, connector_id: int) -> str:
    return f"{station_id}#evse{connector_id}"


def _per_station(spec: SiteSpec, shares: Mapping[str, Target], evses: Mapping[str, list[Session]]) -> dict[str, Target]:
    """A station with several charging EVSEs: its cap is the sum of their shares, its tracked TxProfile the newest
    session's share."""
    targets = dict(shares)
    for s in spec.stations:
        found = evses.get(s.station_id, [])
        keys = [_evse_key(s.station_id, e.connector_id) for e in found]
        if len(found) > 1 and all(k in shares for k in keys):
            total = sum(shares[k].tx or 0.0 for k in keys)
            targets[s.station_id] = Target(default=total, tx=shares[keys[0]].tx)
    return targets


def _other_evses(s: StationSpec, others: list[Session], shares: Mapping[str, Target], protocol: str) -> list[_Change]:
    """TxProfiles for a station's other charging EVSEs, sent whenever its cap or newest share changes."""
    changes = []
    for e in others:
        share = shares.get(_evse_key(s.station_id, e.connector_id))
        if share is None or share.tx is None:
            continue
        action, payload = allocation_profile(
            protocol, share.tx, s.phases, e.connector_id, e.station_tx_id or e.transaction_id
        )
        changes.append(_Change(s.station_id, "evse", share.tx, action, payload, protocol))
    return changes


def _station(spec: SiteSpec, station_id: str) -> StationSpec:
    return next(s for s in spec.stations if s.station_id == station_id)


def _tx(sessions: Mapping[str, Session], station_id: str) -> int | None:
    session = sessions.get(station_id)
    return session.transaction_id if session else None


def _drop_pending(held: Held, component: str) -> Held:
    return replace(held, default_pending=None) if component == "default" else replace(held, tx_pending=None)
