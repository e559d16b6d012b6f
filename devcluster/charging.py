"""A simulated station with an EV behind connector 1 (and ``connectors`` in all) and the charging profiles it holds.

For load-management tests and benchmarks: the station keeps the profiles a CSMS sets (OCPP 1.6 replacement by id,
or by connector + stack level + purpose; a TxProfile ends with its transaction), draws what its EV wants within
the limit in force, and reports that draw as Current.Import meter values. It reconnects after losing the CSMS
and keeps its profiles meanwhile, as firmware does. Only the first schedule period of a profile is read.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from devcluster.station import Payload, SimulatedStation, accept_everything, now_iso


@dataclass
class HeldProfile:
    connector_id: int
    profile: Payload

    @property
    def purpose(self) -> str:
        return str(self.profile["chargingProfilePurpose"])

    @property
    def limit(self) -> float:
        return float(self.profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"])


@dataclass
class ChargingStation:
    station_id: str
    max_current: float = 32.0
    connectors: int = 1  # the EV of ``demand`` is on connector 1; ``start_other`` plugs one into another
    accepts_profiles: bool = True
    report_interval: float = 1.0
    profiles: dict[int, HeldProfile] = field(default_factory=dict)
    demand: float = 0.0  # what the EV would draw; 0 while idle
    transaction_id: int | None = None
    others: dict[int, int] = field(default_factory=dict)  # connector (2..) -> its open transaction
    energy_wh: float = 0.0
    accepted: list[tuple[float, str, float]] = field(default_factory=list)  # (trio time, purpose, limit)
    session_started_at: float = 0.0
    allocation_latency: list[float] = field(default_factory=list)  # session start -> its TxProfile held (s)
    changed: trio.Event = field(default_factory=trio.Event)
    _measured_session: int | None = None
    on_change: Callable[[], None] | None = None  # after any change of what the station may draw
    _station: SimulatedStation | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- what the station allows ------------------------------------------------------------------------

    def _best(self, purpose: str, transaction_id: int | None = None) -> HeldProfile | None:
        held = [
            p
            for p in self.profiles.values()
            if p.purpose == purpose and (transaction_id is None or p.profile.get("transactionId") == transaction_id)
        ]
        return max(held, key=lambda p: p.profile["stackLevel"], default=None)

    def limit_in_force(self) -> float:
        """What the connector may draw now: the transaction's TxProfile, else the default, else the station's max;
        while idle, what a session starting now would get."""
        tx = self._best("TxProfile", self.transaction_id) if self.transaction_id is not None else None
        chosen = tx or self._best("TxDefaultProfile")
        limit = chosen.limit if chosen is not None else self.max_current
        cap = self._best("ChargePointMaxProfile")
        return min(limit, cap.limit if cap else self.max_current, self.max_current)

    def connector_limit(self, connector: int) -> float:
        """What one connector may draw by its own profiles: its transaction's TxProfile, else the default (which
        applies to each connector), else the station's max."""
        transaction = self.transaction_id if connector == 1 else self.others.get(connector)
        tx = self._best("TxProfile", transaction) if transaction is not None else None
        chosen = tx or self._best("TxDefaultProfile")
        return min(chosen.limit if chosen is not None else self.max_current, self.max_current)

    def station_limit(self) -> float:
        """What the whole station could draw if every connector had a car: its connectors' limits together, within
        a ChargePointMaxProfile (which bounds them all)."""
        total = sum(self.connector_limit(c) for c in range(1, self.connectors + 1))
        cap = self._best("ChargePointMaxProfile")
        return min(total, cap.limit if cap else total)

    @property
    def draw(self) -> float:
        return min(self.demand, self.limit_in_force()) if self.transaction_id is not None else 0.0

    # -- the CSMS's calls ------------------------------------------------------------------------------

    async def answer(self, action: str, payload: Payload) -> Payload:
        if action == "SetChargingProfile":
            return self._set(payload)
        if action == "ClearChargingProfile":
            doomed = [pid for pid in self.profiles if "id" not in payload or pid == payload["id"]]
            for pid in doomed:
                del self.profiles[pid]
            self._changed()
            return {"status": "Accepted" if doomed else "Unknown"}
        return await accept_everything(action, payload)

    def _set(self, payload: Payload) -> Payload:
        profile, connector = payload["csChargingProfiles"], payload["connectorId"]
        if not self.accepts_profiles:
            return {"status": "Rejected"}
        if profile["chargingProfilePurpose"] == "TxProfile" and profile.get("transactionId") not in (
            self.transaction_id,
            *self.others.values(),
        ):
            return {"status": "Rejected"}
        for pid, held in list(self.profiles.items()):
            same_slot = held.connector_id == connector and held.profile["stackLevel"] == profile["stackLevel"]
            if pid == profile["chargingProfileId"] or (same_slot and held.purpose == profile["chargingProfilePurpose"]):
                del self.profiles[pid]
        if profile["chargingProfilePurpose"] == "TxProfile" and self._measured_session != self.transaction_id:
            self._measured_session = self.transaction_id
            self.allocation_latency.append(trio.current_time() - self.session_started_at)
        self.profiles[profile["chargingProfileId"]] = HeldProfile(connector, profile)
        self.accepted.append((trio.current_time(), profile["chargingProfilePurpose"], self.limit_in_force()))
        self._changed()
        return {"status": "Accepted"}

    def _changed(self) -> None:
        self.changed.set()
        self.changed = trio.Event()
        if self.on_change is not None:
            self.on_change()

    # -- sessions --------------------------------------------------------------------------------------

    async def start_session(self, demand: float) -> int:
        station = self._connected()
        self.session_started_at = trio.current_time()
        answer = await station.start_transaction(1, f"EV-{self.station_id}", int(self.energy_wh))
        self.transaction_id = int(answer["transactionId"])
        self.demand = demand
        self._changed()
        return self.transaction_id

    async def start_other(self, connector: int) -> int:
        """A second car on another connector (it draws what its profiles allow; only connector 1 reports)."""
        answer = await self._connected().start_transaction(connector, f"EV-{self.station_id}-{connector}", 0)
        self.others[connector] = int(answer["transactionId"])
        self._changed()
        return self.others[connector]

    async def stop_session(self) -> None:
        transaction_id, self.transaction_id, self.demand = self.transaction_id, None, 0.0
        for pid in [pid for pid, p in self.profiles.items() if p.purpose == "TxProfile"]:
            del self.profiles[pid]  # a TxProfile ends with its transaction
        self._changed()
        if transaction_id is not None:
            await self._connected().stop_transaction(transaction_id, int(self.energy_wh))

    def _connected(self) -> SimulatedStation:
        if self._station is None:
            raise ConnectionError(f"{self.station_id} is not connected")
        return self._station

    @property
    def connected(self) -> bool:
        return self._station is not None

    # -- the connection --------------------------------------------------------------------------------

    async def run(self, url: str, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Stay connected (reconnecting after a loss), booted, reporting the draw every ``report_interval``."""
        started = False
        while True:
            with contextlib.suppress(Exception):  # a lost CSMS: reconnect, as firmware does
                async with SimulatedStation.connect(url, self.station_id, answer=self.answer) as station:
                    await station.boot()
                    await station.status(1, "Charging" if self.transaction_id else "Available")
                    for connector in range(2, self.connectors + 1):
                        await station.status(connector, "Charging" if connector in self.others else "Available")
                    self._station = station
                    if not started:
                        started = True
                        task_status.started()
                    await self._report(station)
            self._station = None
            await trio.sleep(0.2)

    async def _report(self, station: SimulatedStation) -> None:
        while True:
            await trio.sleep(self.report_interval)
            if self.transaction_id is None:
                continue
            draw = self.draw
            self.energy_wh += draw * 230 * 3 * self.report_interval / 3600
            await station.call("MeterValues", self._meter_values(self.transaction_id, draw))

    def _meter_values(self, transaction_id: int, draw: float) -> Payload:
        sampled: list[dict[str, Any]] = [
            {"value": f"{draw:.1f}", "measurand": "Current.Import", "unit": "A"},
            {"value": str(int(self.energy_wh)), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        ]
        return {
            "connectorId": 1,
            "transactionId": transaction_id,
            "meterValue": [{"timestamp": now_iso(), "sampledValue": sampled}],
        }


@dataclass
class SiteSampler:
    """Samples a simulated site: the sum of limits in force (at every change and every ``period``) and, while the
    EVs want more than the limit, how much of it they draw."""

    stations: list[ChargingStation]
    limit: float
    armed: bool = False  # count from arm() on: before, stations may not hold their failsafe yet
    highest: float = 0.0
    samples: int = 0
    utilisation: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        for station in self.stations:
            station.on_change = self.check

    def total(self) -> float:
        return sum(s.station_limit() for s in self.stations)

    def arm(self) -> None:
        self.armed = True
        self.check()

    def check(self) -> None:
        if self.armed:
            self.highest = max(self.highest, self.total())
            self.samples += 1

    async def run(self, period: float = 0.05) -> None:
        self.arm()
        while True:
            self.check()
            wanted = sum(min(s.demand, s.max_current) for s in self.stations if s.transaction_id is not None)
            if wanted > self.limit:
                self.utilisation.append(sum(s.draw for s in self.stations) / self.limit)
            await trio.sleep(period)


async def drive_sessions(
    station: ChargingStation,
    rng: Any,
    *,
    idle: tuple[float, float] = (2.0, 6.0),
    charging: tuple[float, float] = (15.0, 30.0),
    demands: tuple[float, ...] = (32.0, 32.0, 10.0),
) -> None:
    """Sessions starting and stopping at random (a station that is offline at the moment skips its turn)."""
    while True:
        await trio.sleep(rng.uniform(*idle))
        with contextlib.suppress(Exception):
            await station.start_session(min(station.max_current, rng.choice(demands)))
            await trio.sleep(rng.uniform(*charging))
        await _stop(station)


async def _stop(station: ChargingStation) -> None:
    """Stop the session, retrying while the station reconnects (as firmware queues a StopTransaction)."""
    transaction_id = station.transaction_id
    with trio.move_on_after(30):
        while True:
            try:
                await station.stop_session()
                return
            except Exception:
                station.transaction_id = transaction_id  # not delivered: still to send
                await trio.sleep(0.5)
