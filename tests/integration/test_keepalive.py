"""WebSocket liveness: a station whose host vanished (no FIN, no pongs) is closed after interval + timeout,
while stations that answer pings stay connected; one scheduler pings them all (csms/stations/keepalive.py).
A station that keeps talking (OCPP messages or its own pings) is not pinged until it falls silent.
A station's Ping that arrives while the replica closes its connection ends that connection only."""

from __future__ import annotations

import struct

import pytest
import trio

from devcluster.station import SimulatedStation
from tests.integration.conftest import Running

INTERVAL, TIMEOUT = 0.2, 0.3
GOING_AWAY = 1001


async def silent_station(ocpp_url: str, station_id: str) -> trio.SocketStream:
    """A raw WebSocket handshake; afterwards the station reads but never answers, like a frozen host."""
    host_port = ocpp_url.removeprefix("ws://").split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    path = "/" + ocpp_url.removeprefix("ws://").split("/", 1)[1] + "/" + station_id
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += await stream.receive_some(4096)
    assert response.startswith(b"HTTP/1.1 101"), response
    return stream


async def frames_until_close(
    stream: trio.SocketStream, seen: list[tuple[int, float]] | None = None
) -> tuple[list[int], int, str]:
    """Unmasked server frames (opcodes) up to the close frame; returns (opcodes, close code, reason). Each
    frame's opcode and arrival time (trio clock) is also appended to `seen` as it arrives."""
    buffer, opcodes = b"", []
    while True:
        while len(buffer) < 2 or len(buffer) < 2 + (buffer[1] & 0x7F):
            chunk = await stream.receive_some(4096)
            assert chunk, "the server dropped TCP without a close frame"
            buffer += chunk
        opcode, length = buffer[0] & 0x0F, buffer[1] & 0x7F
        assert length < 126, "short frames only"
        payload, buffer = buffer[2 : 2 + length], buffer[2 + length :]
        opcodes.append(opcode)
        if seen is not None:
            seen.append((opcode, trio.current_time()))
        if opcode == 0x8:
            return opcodes, struct.unpack("!H", payload[:2])[0], payload[2:].decode()


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (mask key 0: the payload as is)."""
    return bytes([0x80 | opcode, 0x80 | len(payload), 0, 0, 0, 0]) + payload


@pytest.mark.parametrize(
    "replica_overrides",
    [{"CSMS_REGISTRATION": "auto", "CSMS_PING_INTERVAL": str(INTERVAL), "CSMS_PING_TIMEOUT": str(TIMEOUT)}],
)
async def test_a_silent_station_is_closed_after_a_missed_pong_and_the_others_stay(csms: Running) -> None:
    async with SimulatedStation.connect(csms.ocpp_url, "CP-ALIVE") as alive:
        await alive.boot()
        silent = await silent_station(csms.ocpp_url, "CP-SILENT")
        started = trio.current_time()
        with trio.fail_after(10):
            opcodes, code, reason = await frames_until_close(silent)
        waited = trio.current_time() - started
        assert 0x9 in opcodes  # it was pinged
        assert (code, reason) == (GOING_AWAY, "pong timeout")
        assert waited >= TIMEOUT
        # By now the answering station was pinged at least once (its first ping falls in [INTERVAL/2, INTERVAL]).
        assert await alive.call("Heartbeat", {}) is not None

        # The station pings while the replica waits for its Close reply (trio-websocket #184): that connection
        # ends, the replica serves on. Masked, as a client's frames must be (mask key 0: payload as is).
        await silent.send_all(client_frame(0x9, b"ping"))
        with trio.fail_after(10):
            while await silent.receive_some(4096):
                pass
        await silent.aclose()
        assert await alive.call("Heartbeat", {}) is not None


TALK_INTERVAL, TALK_TIMEOUT = 1.0, 0.5


@pytest.mark.parametrize(
    "replica_overrides",
    [{"CSMS_REGISTRATION": "auto", "CSMS_PING_INTERVAL": str(TALK_INTERVAL), "CSMS_PING_TIMEOUT": str(TALK_TIMEOUT)}],
)
@pytest.mark.parametrize(
    "talk", [client_frame(0x1, b'[2,"hb","Heartbeat",{}]'), client_frame(0x9, b"mine")], ids=["ocpp", "ws-ping"]
)
async def test_a_station_that_keeps_talking_is_not_pinged_until_it_falls_silent(csms: Running, talk: bytes) -> None:
    station = await silent_station(csms.ocpp_url, "CP-TALKS")
    seen: list[tuple[int, float]] = []
    async with trio.open_nursery() as nursery:
        closed = trio.Event()
        result: list[tuple[list[int], int, str]] = []

        async def read() -> None:
            result.append(await frames_until_close(station, seen))
            closed.set()

        nursery.start_soon(read)
        talked_until = trio.current_time() + 3 * TALK_INTERVAL
        while trio.current_time() < talked_until:  # a frame every tenth of the interval, for three intervals
            await station.send_all(talk)
            await trio.sleep(TALK_INTERVAL / 10)
        silent_at = trio.current_time()
        assert [op for op, _ in seen if op == 0x9] == [], "pinged while it talked"
        assert len(seen) >= 10  # its frames were answered (CallResults or pongs): the server heard them
        with trio.fail_after(10):
            await closed.wait()
    _, code, reason = result[0]
    assert (code, reason) == (GOING_AWAY, "pong timeout")
    pinged_at = [at for op, at in seen if op == 0x9]
    assert pinged_at and pinged_at[0] >= silent_at  # pinged once it fell silent, and it never answered
    closed_at = seen[-1][1]
    # Closed within interval + timeout + a tick of falling silent, as a vanished host always was (+ 2 s for a
    # loaded machine: the failure this guards against is a ping long after, or never).
    assert TALK_TIMEOUT <= closed_at - silent_at <= TALK_INTERVAL + TALK_TIMEOUT + TALK_INTERVAL / 4 + 2.0
    await station.aclose()
