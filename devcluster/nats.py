"""Spawn a throwaway ``nats-server -js`` (JetStream) for development and tests (Debian package ``nats-server``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

import nats

from devcluster.etcd import free_port


class NatsServer:
    """One nats-server with JetStream on free 127.0.0.1 ports (client and monitoring), data in a temp dir."""

    def __init__(self, *, binary: str | None = None, startup_timeout: float = 15.0) -> None:
        found = binary or os.environ.get("CSMS_NATS_BIN") or shutil.which("nats-server") or "/usr/sbin/nats-server"
        self.binary = found
        self.base_dir = Path(tempfile.mkdtemp(prefix="csms-nats-"))
        self.log_path = self.base_dir / "nats.log"
        self.port = free_port()
        self.http_port = free_port()
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> str:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-m",
                    str(self.http_port),
                    "-sd",
                    str(self.base_dir / "js"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited during start-up:\n{self.log_tail()}")
            if self.healthy():
                return self.url
            time.sleep(0.05)
        raise RuntimeError(f"nats-server not healthy after {self.startup_timeout}s:\n{self.log_tail()}")

    def messages(self, stream: str) -> list[tuple[str, dict[str, str], bytes]]:
        """Every message of ``stream`` in stream order as (subject, headers, data). Blocking: plain asyncio
        (nats-py) on its own loop, so call it from a thread in trio code."""

        async def read() -> list[tuple[str, dict[str, str], bytes]]:
            nc = await nats.connect(self.url)
            try:
                js = nc.jetstream()
                info = await js.stream_info(stream)
                out = []
                for seq in range(info.state.first_seq, info.state.last_seq + 1):
                    msg = await js.get_msg(stream, seq)
                    out.append((msg.subject or "", dict(msg.headers or {}), msg.data or b""))
                return out
            finally:
                await nc.close()

        return asyncio.run(read())

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz?js-enabled-only=true", timeout=0.5):
                return True
        except (OSError, urllib.error.URLError):
            return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)
