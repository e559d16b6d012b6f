"""A simulated OCPP 1.6 charge point over trio-websocket, for tests, benchmarks and the local cluster.

It speaks the wire format directly (no RPC layer of ours) so that tests exercise the server from the outside,
the way real firmware does, including sending garbage on purpose.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import secrets
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

Payload = dict[str, Any]
# Answers CSMS-initiated calls: (action, payload) -> result payload, or raise StationCallError.
CallAnswerer = Callable[[str, Payload], Awaitable[Payload]]


class CallErrorReply(Exception):
    """The CSMS answered our call with a CallError."""

    def __init__(self, code: str, description: str, details: Any) -> None:
        super().__init__(f"{code}: {description}")
        self.code, self.description, self.details = code, description, details


class StationCallError(Exception):
    """Raised by a CallAnswerer to answer the CSMS with a CallError."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(code)
        self.code, self.description = code, description


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def accept_everything(action: str, payload: Payload) -> Payload:
    if action in ("GetConfiguration",):
        return {"configurationKey": [], "unknownKey": []}
    if action in ("GetLocalListVersion",):
        return {"listVersion": 0}
    if action in (
        "ClearCache",
        "Reset",
        "ChangeAvailability",
        "ChangeConfiguration",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "TriggerMessage",
        "SendLocalList",
        "SetChargingProfile",
        "ClearChargingProfile",
        "CancelReservation",
        "ReserveNow",
        # the 1.6 security extension
        "ExtendedTriggerMessage",
        "CertificateSigned",
        "InstallCertificate",
        "DeleteCertificate",
        "SignedUpdateFirmware",
    ):
        return {"status": "Accepted"}
    if action == "GetInstalledCertificateIds":
        return {"status": "NotFound"}
    if action == "GetLog":
        return {"status": "Accepted", "filename": "log.tar.gz"}
    if action == "UnlockConnector":
        return {"status": "Unlocked"}
    if action == "DataTransfer":
        return {"status": "Accepted"}
    if action == "GetCompositeSchedule":
        return {"status": "Rejected"}
    if action == "GetDiagnostics":
        return {}
    if action == "UpdateFirmware":
        return {}
    raise StationCallError("NotImplemented", f"simulator does not know {action}")


class SimulatedStation:
    """One connection. Use `async with SimulatedStation.connect(...) as station:`."""

    def __init__(self, ws: WebSocketConnection, station_id: str, answer: CallAnswerer) -> None:
        self.ws = ws
        self.station_id = station_id
        self._answer = answer
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(3)
        self._pending: dict[str, trio.MemorySendChannel[list[Any]]] = {}
        self.received_calls: list[tuple[str, Payload]] = []
        # Answers nobody is waiting for (replies to raw frames, "-1" errors): read with receive_raw().
        self._unmatched_send, self._unmatched = trio.open_memory_channel[list[Any]](64)

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        station_id: str,
        *,
        password: str | None = None,
        username: str | None = None,
        subprotocols: list[str] | None = None,
        answer: CallAnswerer = accept_everything,
        connect_timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> AsyncIterator[SimulatedStation]:
        """`ssl_context` for wss:// (with a client certificate loaded for security profile 3); `username`
        defaults to the station id, as OCPP requires."""
        headers: list[tuple[bytes, bytes]] = list(extra_headers or [])
        if password is not None:
            token = base64.b64encode(f"{username or station_id}:{password}".encode()).decode()
            headers.append((b"Authorization", f"Basic {token}".encode()))
        async with open_websocket_url(
            url.rstrip("/") + "/" + station_id,
            ssl_context=ssl_context,
            subprotocols=["ocpp1.6"] if subprotocols is None else subprotocols,
            extra_headers=headers,
            connect_timeout=connect_timeout,
            disconnect_timeout=2,
        ) as ws:
            station = cls(ws, station_id, answer)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(station._reader)
                try:
                    yield station
                finally:
                    nursery.cancel_scope.cancel()
                    station._abandon_pending()

    async def _reader(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                try:
                    text = await self.ws.get_message()
                except Exception:
                    self._abandon_pending()
                    return
                frame = orjson.loads(text)
                if frame[0] == 2:
                    self.received_calls.append((frame[2], frame[3]))
                    nursery.start_soon(self._answer_call, frame)
                elif frame[1] in self._pending:
                    self._pending.pop(frame[1]).send_nowait(frame)
                else:
                    with contextlib.suppress(trio.WouldBlock):
                        self._unmatched_send.send_nowait(frame)

    def _abandon_pending(self) -> None:
        """Our calls still waiting end with "connection closed" now, not at their timeout: the reader may never
        see the close (trio-websocket can hang in the close handshake with a peer that already went away)."""
        for channel in self._pending.values():
            channel.close()
        self._pending.clear()

    async def _answer_call(self, frame: list[Any]) -> None:
        _, unique_id, action, payload = frame
        try:
            reply: list[Any] = [3, unique_id, await self._answer(action, payload)]
        except StationCallError as exc:
            reply = [4, unique_id, exc.code, exc.description, {}]
        except trio.TooSlowError:
            return  # simulate silence
        with contextlib.suppress(ConnectionClosed):  # the CSMS may close right after calling us
            await self.ws.send_message(orjson.dumps(reply).decode())

    async def send_raw(self, text: str | bytes) -> None:
        await self.ws.send_message(text)

    async def receive_raw(self, timeout: float = 5.0) -> list[Any]:
        """The next frame that answered no call of ours (a reply to a raw send): for bad-input tests."""
        with trio.fail_after(timeout):
            return await self._unmatched.receive()

    async def call(
        self, action: str, payload: Payload, *, timeout: float = 10.0, unique_id: str | None = None
    ) -> Payload:
        """Send a Call and return the CallResult payload; a CallError raises CallErrorReply."""
        unique_id = unique_id or f"{self._prefix}-{next(self._ids)}"
        send, receive = trio.open_memory_channel[list[Any]](1)
        self._pending[unique_id] = send
        await self.ws.send_message(orjson.dumps([2, unique_id, action, payload]).decode())
        with trio.fail_after(timeout):
            try:
                frame = await receive.receive()
            except trio.EndOfChannel:
                raise ConnectionError("connection closed before the answer") from None
        if frame[0] == 4:
            raise CallErrorReply(frame[2], frame[3], frame[4] if len(frame) > 4 else {})
        return frame[2]

    # Convenience wrappers for the common station messages.

    async def boot(self, **extra: Any) -> Payload:
        return await self.call("BootNotification", {"chargePointVendor": "SimCo", "chargePointModel": "Sim-1", **extra})

    async def status(self, connector_id: int, status: str, error_code: str = "NoError") -> Payload:
        return await self.call(
            "StatusNotification",
            {"connectorId": connector_id, "status": status, "errorCode": error_code, "timestamp": now_iso()},
        )

    async def start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str | None = None
    ) -> Payload:
        return await self.call(
            "StartTransaction",
            {
                "connectorId": connector_id,
                "idTag": id_tag,
                "meterStart": meter_start,
                "timestamp": timestamp or now_iso(),
            },
        )

    async def meter_values(
        self, connector_id: int, transaction_id: int | None, wh: int, timestamp: str | None = None
    ) -> Payload:
        payload: Payload = {
            "connectorId": connector_id,
            "meterValue": [
                {
                    "timestamp": timestamp or now_iso(),
                    "sampledValue": [{"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}],
                }
            ],
        }
        if transaction_id is not None:
            payload["transactionId"] = transaction_id
        return await self.call("MeterValues", payload)

    async def stop_transaction(
        self,
        transaction_id: int,
        meter_stop: int,
        reason: str = "Local",
        timestamp: str | None = None,
        id_tag: str | None = None,
    ) -> Payload:
        payload: Payload = {
            "transactionId": transaction_id,
            "meterStop": meter_stop,
            "timestamp": timestamp or now_iso(),
            "reason": reason,
        }
        if id_tag is not None:
            payload["idTag"] = id_tag
        return await self.call("StopTransaction", payload)
