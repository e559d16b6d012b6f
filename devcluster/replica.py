"""One `csms serve` replica as a child process: what the local cluster and the cluster tests supervise."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ReplicaProcess:
    def __init__(
        self, node_id: str, env: dict[str, str], *, log_dir: Path | None = None, cwd: Path | None = None
    ) -> None:
        """`cwd` is where `python -m csms` runs; it comes first on sys.path (an older release's tree, say)."""
        self.node_id = node_id
        self.cwd = cwd
        self.env = {**os.environ, "CSMS_NODE_ID": node_id, "CSMS_BIND": "127.0.0.1"}
        self._pick_ports()
        self.env.update(env)
        # Ports we picked (not the caller's) may be taken by another process before the replica binds them.
        self._own_ports = not {"CSMS_OCPP_PORT", "CSMS_API_PORT", "CSMS_ADVERTISE_ADDRESS"} & set(env)
        self.ocpp_port = int(self.env["CSMS_OCPP_PORT"])
        self.api_port = int(self.env["CSMS_API_PORT"])
        self.log_path = (log_dir or Path("/tmp")) / f"{node_id}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._ready_once = False
        self._log_start = 0

    def _pick_ports(self) -> None:
        self.ocpp_port, self.api_port = free_port(), free_port()
        self.env["CSMS_OCPP_PORT"] = str(self.ocpp_port)
        self.env["CSMS_API_PORT"] = str(self.api_port)
        self.env["CSMS_ADVERTISE_ADDRESS"] = f"http://127.0.0.1:{self.api_port}"

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "csms", "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until /readyz answers 200; a replica that died on the way raises with its log's tail. A first start
        that lost a port we picked to another process (a free port is free only when picked) picks new ones and
        starts again, up to three times."""
        deadline = time.monotonic() + timeout
        retries = 3
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                if retries and self._own_ports and not self._ready_once and self._lost_port():
                    retries -= 1
                    self._pick_ports()
                    self.start()
                    continue
                raise RuntimeError(f"{self.node_id} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.api_url + "/readyz", timeout=1) as response:
                    if response.status == 200:
                        self._ready_once = True
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.node_id} not ready after {timeout}s:\n{self.log_tail()}")

    def _lost_port(self) -> bool:
        with open(self.log_path, "rb") as log:
            log.seek(self._log_start)
            return b"Address already in use" in log.read()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal(self, sig: signal.Signals) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 40.0) -> None:
        if not self.running:
            return
        self.resume()
        self.terminate()
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
