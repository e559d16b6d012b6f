"""Minimal trio-websocket servers to measure the simulator against: `echo` (the raw transport ceiling: every
frame sent straight back, nothing parsed) and `ocpp` (parses each call and answers a canned OCPP 1.6 result,
no storage: the JSON + framing cost without the CSMS).

    python -m benchmarks.stub_server --mode echo [--port 0]     # prints "READY <port>" when listening
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from benchmarks.profiles import now_iso

MAX_FRAME = 65536


@dataclass
class StubCounters:
    connections: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    trigger_answers: int = 0


def _canned(action: str, transaction_id: int) -> dict[str, Any]:
    if action == "BootNotification":
        return {"status": "Accepted", "currentTime": now_iso(), "interval": 300}
    if action == "Heartbeat":
        return {"currentTime": now_iso()}
    if action in ("Authorize", "StopTransaction"):
        return {"idTagInfo": {"status": "Accepted"}}
    if action == "StartTransaction":
        return {"transactionId": transaction_id, "idTagInfo": {"status": "Accepted"}}
    return {}


class StubServer:
    """`mode` is "echo" or "ocpp"; with `trigger` the ocpp stub sends each station one TriggerMessage after
    its first call (to check that a client answers CSMS-initiated calls)."""

    def __init__(self, mode: str, *, trigger: bool = False) -> None:
        if mode not in ("echo", "ocpp"):
            raise ValueError("mode must be echo or ocpp")
        self.mode = mode
        self.trigger = trigger
        self.counters = StubCounters()
        self._next_tx = 0

    async def handle(self, request: WebSocketRequest) -> None:
        offered = request.proposed_subprotocols
        ws = await request.accept(subprotocol="ocpp1.6" if "ocpp1.6" in offered else None)
        self.counters.connections += 1
        try:
            if self.mode == "echo":
                while True:
                    await ws.send_message(await ws.get_message())
            triggered = not self.trigger
            while True:
                frame = orjson.loads(await ws.get_message())
                if frame[0] == 3:  # an answer to our TriggerMessage
                    self.counters.trigger_answers += 1
                    continue
                action = frame[2]
                self.counters.calls[action] = self.counters.calls.get(action, 0) + 1
                self._next_tx += 1
                await ws.send_message(orjson.dumps([3, frame[1], _canned(action, self._next_tx)]).decode())
                if not triggered:
                    triggered = True
                    trigger = {"requestedMessage": "StatusNotification"}
                    await ws.send_message(orjson.dumps([2, "t1", "TriggerMessage", trigger]).decode())
        except ConnectionClosed:
            pass

    async def serve(self, port: int = 0, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on 127.0.0.1:`port` (0 = any free port); `nursery.start` returns the bound port."""
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                lambda task_status: serve_websocket(
                    self.handle, "127.0.0.1", port, None, max_message_size=MAX_FRAME, task_status=task_status
                )
            )
            task_status.started(server.port)


async def _main(mode: str, port: int) -> None:
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(StubServer(mode).serve, port)
        print(f"READY {bound}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="echo / canned-OCPP WebSocket server for benchmarks")
    parser.add_argument("--mode", choices=("echo", "ocpp"), default="echo")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    from benchmarks.simulator import raise_fd_limit

    raise_fd_limit()
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(_main, args.mode, args.port)


if __name__ == "__main__":
    main()
