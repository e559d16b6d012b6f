"""What each simulated station sends and when: the `idle`, `stress` and `realistic` load profiles.

A station's whole state is one small `StationState` (slots, a few lists, a tiny heap) so tens of thousands fit
in one process; payloads are built at send time from it, never stored.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from datetime import UTC, datetime
from typing import Any

Step = tuple[str, int, str]  # (OCPP action, connector id, status or "") for one call to send
Payload = dict[str, Any]

PROFILES = ("idle", "stress", "realistic")

# stress: a closed-loop cycle of 20 calls per station, a charging session in miniature:
# MeterValues 50 %, Heartbeat 20 %, StatusNotification 15 %, Authorize / Start / Stop 5 % each.
STRESS_CYCLE: tuple[Step, ...] = (
    ("Heartbeat", 0, ""),
    ("Authorize", 1, ""),
    ("StatusNotification", 1, "Preparing"),
    ("StartTransaction", 1, ""),
    ("StatusNotification", 1, "Charging"),
    *(("MeterValues", 1, ""),) * 10,
    ("StopTransaction", 1, ""),
    ("StatusNotification", 1, "Available"),
    *(("Heartbeat", 0, ""),) * 3,
)

# realistic: seconds of simulated time (divided by the speed factor)
HEARTBEAT_S = 300.0
METER_INTERVAL_S = 60.0
TX_PERIOD_S = 1800.0  # a transaction starts about this often per connector
CHARGE_MIN_S, CHARGE_MAX_S = 600.0, 1800.0  # mean 1200 s charging, so mean 600 s idle between sessions
WH_PER_SAMPLE = 120
CHARGING_SHARE = (CHARGE_MIN_S + CHARGE_MAX_S) / 2 / TX_PERIOD_S  # steady state: 2/3 of connectors charging
# What a real AC/DC charger samples each MeterValues: per phase where it has phases; a station sends 8-15.
MEASURANDS: tuple[tuple[str, str, str, str], ...] = (  # (measurand, phase or location, unit, value)
    ("Energy.Active.Import.Register", "", "Wh", ""),  # the station's register
    ("Power.Active.Import", "", "W", "7200"),
    ("Current.Import", "L1", "A", "10.4"),
    ("Current.Import", "L2", "A", "10.5"),
    ("Current.Import", "L3", "A", "10.3"),
    ("Voltage", "L1-N", "V", "230.1"),
    ("Voltage", "L2-N", "V", "229.8"),
    ("Voltage", "L3-N", "V", "231.0"),
    ("Power.Offered", "", "W", "11000"),
    ("Current.Offered", "", "A", "16"),
    ("Frequency", "", "", "50.0"),
    ("Temperature", "Body", "Celsius", "34.5"),
    ("SoC", "EV", "Percent", "57"),
    ("Power.Factor", "", "", "0.98"),
    ("Energy.Active.Export.Register", "", "Wh", "0"),
)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class StationState:
    """Everything one simulated station remembers between calls."""

    __slots__ = (
        "charging",
        "connectors",
        "heap",
        "meter_wh",
        "queue",
        "samples",
        "seq",
        "station_id",
        "status",
        "step",
        "tags",
        "tx",
        "tx_seq",
    )

    def __init__(self, station_id: str, connectors: int, rng: random.Random) -> None:
        self.station_id = station_id
        self.connectors = connectors
        # index 0 unused (connector ids start at 1); 1.6: the CSMS's int id, 2.0.1: the station's own string
        self.tx: list[int | str | None] = [None] * (connectors + 1)
        self.tx_seq = [0] * (connectors + 1)  # 2.0.1: the last seqNo sent in the connector's transaction
        self.charging = [False] * (connectors + 1)
        self.status = ["Available"] * (connectors + 1)
        self.meter_wh = [rng.randrange(0, 1_000_000) for _ in range(connectors + 1)]
        self.queue: deque[Step] = deque()  # due now: boot sequence, triggered messages, an event's calls
        self.heap: list[tuple[float, int, str, int]] = []  # (due, seq, event, connector) for realistic/idle
        self.seq = 0
        self.step = rng.randrange(len(STRESS_CYCLE))  # stress: desynchronise the fleet's cycles
        self.samples = rng.randint(8, len(MEASURANDS))  # sampled values per MeterValues, fixed per station
        self.tags = [0] * (connectors + 1)  # the id tag (index) of each connector's session, with many tags

    def schedule(self, due: float, event: str, connector: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (due, self.seq, event, connector))


class Profile:
    """Decides each station's next call. `speed` compresses simulated time (2.0 = twice as fast)."""

    def __init__(self, name: str, *, speed: float = 1.0, heartbeat_s: float = HEARTBEAT_S, ramp_s: float = 0.0) -> None:
        """`ramp_s` > 0 (realistic, simulated seconds): start in the steady state instead of with every connector
        idle: CHARGING_SHARE of the connectors begin a session spread over the ramp, with what is left of it
        (``_session_s``), the rest begin after it (an exponential idle gap later), so a speed-1 run needs a ramp
        of minutes, not a 30-minute warm-up, and sees starts and stops at their steady rates."""
        if name not in PROFILES:
            raise ValueError(f"unknown profile {name!r} (one of {', '.join(PROFILES)})")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.name = name
        self.speed = speed
        self.heartbeat_s = heartbeat_s
        self.ramp_s = ramp_s

    def on_boot(self, state: StationState, now: float, rng: random.Random) -> None:
        """Queue the boot sequence and plant the first timed events (spread so the fleet is not in step)."""
        state.queue.append(("BootNotification", 0, ""))
        if self.name == "stress":
            return
        for connector in range(1, state.connectors + 1):
            state.queue.append(("StatusNotification", connector, state.status[connector]))
        state.schedule(now + rng.uniform(0, self.heartbeat_s) / self.speed, "heartbeat", 0)
        if self.name == "realistic":
            for connector in range(1, state.connectors + 1):
                if not self.ramp_s:
                    start = rng.uniform(0, TX_PERIOD_S)
                elif rng.random() < CHARGING_SHARE:  # charging already: its session is part-way through
                    state.schedule(now + rng.uniform(0, self.ramp_s) / self.speed, "resume", connector)
                    continue
                else:
                    start = self.ramp_s + rng.expovariate(1.0 / (TX_PERIOD_S * (1 - CHARGING_SHARE)))
                state.schedule(now + start / self.speed, "begin", connector)

    def next_step(self, state: StationState, now: float, rng: random.Random) -> tuple[float, Step]:
        """(when to send, what): queued calls are due at once; then the profile's own schedule."""
        if state.queue:
            return now, state.queue.popleft()
        if self.name == "stress":
            step = STRESS_CYCLE[state.step % len(STRESS_CYCLE)]
            state.step += 1
            return now, step
        while True:
            due, _, event, connector = heapq.heappop(state.heap)
            self._expand(state, due, event, connector, rng)
            if state.queue:
                return due, state.queue.popleft()

    def _expand(self, state: StationState, due: float, event: str, connector: int, rng: random.Random) -> None:
        speed = self.speed
        if event == "heartbeat":
            state.queue.append(("Heartbeat", 0, ""))
            state.schedule(due + self.heartbeat_s / speed, "heartbeat", 0)
        elif event in ("begin", "resume"):
            state.charging[connector] = True
            state.queue.extend(
                (
                    ("Authorize", connector, ""),
                    ("StatusNotification", connector, "Preparing"),
                    ("StartTransaction", connector, ""),
                    ("StatusNotification", connector, "Charging"),
                )
            )
            state.schedule(due + METER_INTERVAL_S / speed, "meter", connector)
            state.schedule(due + _session_s(event == "resume", rng) / speed, "end", connector)
        elif event == "meter":
            if state.charging[connector]:
                state.queue.append(("MeterValues", connector, ""))
                state.schedule(due + METER_INTERVAL_S / speed, "meter", connector)
        elif event == "end":
            state.charging[connector] = False
            state.queue.extend(
                (
                    ("StatusNotification", connector, "Finishing"),
                    ("StopTransaction", connector, ""),
                    ("StatusNotification", connector, "Available"),
                )
            )
            idle_mean = TX_PERIOD_S - (CHARGE_MIN_S + CHARGE_MAX_S) / 2
            state.schedule(due + rng.expovariate(1.0 / idle_mean) / speed, "begin", connector)


def _session_s(resumed: bool, rng: random.Random) -> float:
    """A session's length; for one found charging at the start of a steady-state run, what is left of it: an
    in-progress session is picked in proportion to its length (length-biased) and is uniformly far through it,
    so sessions end from the first second at the steady rate (charging connectors / mean length), not after
    CHARGE_MIN_S (a speed-1 window would otherwise see no StopTransaction at all)."""
    if not resumed:
        return rng.uniform(CHARGE_MIN_S, CHARGE_MAX_S)
    length = math.sqrt(CHARGE_MIN_S**2 + rng.random() * (CHARGE_MAX_S**2 - CHARGE_MIN_S**2))
    return rng.random() * length


def id_tag_name(base: str, index: int) -> str:
    """The `index`-th of a fleet's many id tags (the benchmark registers the same names)."""
    return f"{base}-{index:05d}"


def session_tag(state: StationState, step: Step, base: str, count: int, rng: random.Random) -> str:
    """The id tag a call carries: `base` when the fleet has one tag, else a tag drawn from `count` at Authorize
    and kept by the connector's Start/StopTransaction (a driver presenting their card: a cache miss)."""
    if count <= 1:
        return base
    action, connector, _ = step
    if action == "Authorize":
        state.tags[connector] = rng.randrange(count)
    return id_tag_name(base, state.tags[connector])


def build_payload(state: StationState, step: Step, id_tag: str) -> Payload | None:
    """The request payload for `step`, or None when it makes no sense now (a Stop with no transaction)."""
    action, connector, status = step
    if action == "Heartbeat":
        return {}
    if action == "MeterValues":
        state.meter_wh[connector] += WH_PER_SAMPLE
        payload: Payload = {
            "connectorId": connector,
            "meterValue": [
                {
                    "timestamp": now_iso(),
                    "sampledValue": [
                        _sample(measurand, state.meter_wh[connector]) for measurand in MEASURANDS[: state.samples]
                    ],
                }
            ],
        }
        if state.tx[connector] is not None:
            payload["transactionId"] = state.tx[connector]
        return payload
    if action == "StatusNotification":
        state.status[connector] = status
        return {"connectorId": connector, "errorCode": "NoError", "status": status, "timestamp": now_iso()}
    if action == "Authorize":
        return {"idTag": id_tag}
    if action == "StartTransaction":
        state.meter_wh[connector] += 1  # a fresh (station, connector, idTag, timestamp, meterStart) key
        return {
            "connectorId": connector,
            "idTag": id_tag,
            "meterStart": state.meter_wh[connector],
            "timestamp": now_iso(),
        }
    if action == "StopTransaction":
        tx = state.tx[connector]
        if tx is None:
            return None
        state.tx[connector] = None
        return {
            "transactionId": tx,
            "idTag": id_tag,
            "meterStop": state.meter_wh[connector],
            "timestamp": now_iso(),
            "reason": "Local",
        }
    if action == "BootNotification":
        return {"chargePointVendor": "BenchSim", "chargePointModel": "Lite-1"}
    raise ValueError(f"no payload for {action}")


def _sample(measurand: tuple[str, str, str, str], meter_wh: int) -> Payload:
    name, phase_or_location, unit, reading = measurand
    value: Payload = {"value": reading or str(meter_wh)}
    value.update(context="Sample.Periodic", measurand=name)
    if phase_or_location in ("Body", "EV"):
        value["location"] = phase_or_location
    elif phase_or_location:
        value["phase"] = phase_or_location
    if unit:
        value["unit"] = unit
    return value


def absorb_answer(state: StationState, step: Step, answer: Payload, *, fake_tx: int) -> None:
    """Remember what the CSMS told us (the transaction id); an echo server's answer carries none."""
    if step[0] == "StartTransaction":
        tx = answer.get("transactionId")
        state.tx[step[1]] = tx if isinstance(tx, int) else fake_tx


def answer_csms_call(state: StationState, action: str, payload: Payload) -> Payload:
    """Answer a CSMS-initiated call as accepting firmware would; a TriggerMessage also queues the message."""
    if action == "TriggerMessage":
        requested = payload.get("requestedMessage")
        connector = payload.get("connectorId")
        if requested == "StatusNotification":
            targets = [connector] if isinstance(connector, int) and connector > 0 else range(1, state.connectors + 1)
            for c in targets:
                if c <= state.connectors and len(state.queue) < 16:
                    state.queue.append(("StatusNotification", c, state.status[c]))
        elif requested in ("Heartbeat", "BootNotification") and len(state.queue) < 16:
            state.queue.append((requested, 0, ""))
        return {"status": "Accepted"}
    if action == "GetConfiguration":
        return {"configurationKey": [], "unknownKey": []}
    if action == "GetLocalListVersion":
        return {"listVersion": 0}
    if action == "UnlockConnector":
        return {"status": "Unlocked"}
    if action in ("GetDiagnostics", "UpdateFirmware"):
        return {}
    return {"status": "Accepted"}
