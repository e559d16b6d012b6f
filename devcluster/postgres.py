"""Spawn a private Postgres server for tests, benchmarks and the dev launcher.

Synchronous on purpose: pytest session fixtures and command-line launchers call it before any trio loop
exists. Postgres refuses to run as root, so when we are root the server runs as an unprivileged system
account (``csms``, created on demand, else ``nobody``). pause/resume (SIGSTOP/SIGCONT) freeze the postmaster
and every backend together, like a stalled host would.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

SUPERUSER = "postgres"
_SERVICE_ACCOUNT = "csms"
_FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
_PR_SET_PDEATHSIG = 1
_MAX_SOCKET_DIR = 90  # sun_path is 108 bytes, minus "/.s.PGSQL.NNNNN"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresNotFound(RuntimeError):
    """No Postgres server binaries on this machine."""


def find_bindir() -> Path:
    """Locate a directory holding ``initdb`` and ``postgres``.

    Order: ``$CSMS_PG_BINDIR``, ``pg_config --bindir``, the highest ``/usr/lib/postgresql/*/bin`` (Debian),
    then the binaries bundled in the ``pgserver`` wheel.
    """
    candidates: list[Path] = []
    if env := os.environ.get("CSMS_PG_BINDIR"):
        candidates.append(Path(env))
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            cmd = [pg_config, "--bindir"]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    debian.sort(key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parent.name.split(".")])
    candidates.extend(Path(p) for p in reversed(debian))
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    raise PostgresNotFound(
        "no Postgres server binaries found (looked at $CSMS_PG_BINDIR, pg_config --bindir, "
        "/usr/lib/postgresql/*/bin and the pgserver wheel): `apt-get install postgresql` or "
        "`pip install pgserver`"
    )


def _service_account() -> tuple[int, int] | None:
    """(uid, gid) to run the server as, or None to run as ourselves (we are not root)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("CSMS_PG_USER", _SERVICE_ACCOUNT)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                capture_output=True,
                timeout=30,
                check=True,
            )
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """Ask the kernel to SIGINT (fast shutdown) the postmaster if the spawning process dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)


class PostgresServer:
    """One Postgres server process with its own data directory, bound to 127.0.0.1.

    ``data_dir=None`` makes a temporary directory that ``close()`` removes; give a path for a persistent
    dev server (an existing cluster there is reused). ``fast=True`` trades durability for speed (fsync off):
    for tests only. ``start()`` returns a ``postgresql://`` URL to a created database named ``database``.
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        port: int | None = None,
        database: str = "csms",
        fast: bool = False,
        settings: Mapping[str, str] | None = None,
        bindir: str | Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        if not _IDENT.match(database):
            raise ValueError(f"database name {database!r} must be a plain lower-case identifier")
        self._bindir = Path(bindir) if bindir is not None else find_bindir()
        self._owned_base: Path | None = None
        if data_dir is None:
            self._owned_base = Path(tempfile.mkdtemp(prefix="csms-pg-"))
            data_dir = self._owned_base / "data"
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.database = database
        self._settings: dict[str, str] = {"max_connections": "300"}
        if fast:
            self._settings.update(_FAST_SETTINGS)
        self._settings.update(settings or {})
        self._startup_timeout = startup_timeout
        self._account = _service_account()
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    # ----------------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "csms-postgres.log"

    def start(self) -> str:
        """Start (initdb first if needed) and return a URL to ``self.database``, creating it if absent.
        A no-op returning the URL when already running."""
        if self.running:
            return self.url()
        self._initdb()
        first_start = self.port is None
        for attempt in range(3):
            if self.port is None:
                self.port = _free_port()
            try:
                self._spawn()
                break
            except RuntimeError:
                # Another process may have taken the free port we picked; only then try another one.
                if not first_start or attempt == 2:
                    raise
                self.port = None
        self.create_database(self.database, exist_ok=True)
        return self.url()

    def stop(self) -> None:
        """Fast shutdown (SIGINT: abort sessions, checkpoint, exit); escalate if it does not exit in time."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            if self._paused:
                self._signal_group(proc, signal.SIGCONT)
            for sig, wait in ((signal.SIGINT, 30.0), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)):
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._paused = False

    def close(self) -> None:
        """Stop, and remove the data directory if it is a temporary one we made."""
        self.stop()
        if self._owned_base is not None:
            shutil.rmtree(self._owned_base, ignore_errors=True)
            self._owned_base = None

    def restart(self) -> str:
        """Fast shutdown then start again on the same port with the same data (chaos tests)."""
        self.stop()
        return self.start()

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash: the next start runs WAL recovery). The data dir is kept."""
        if self._proc is not None and self._proc.poll() is None:
            self._signal_group(self._proc, signal.SIGKILL)
            self._proc.wait(timeout=30)
        self._proc = None
        self._paused = False

    def pause(self) -> None:
        """Freeze the whole server (SIGSTOP to its process group): sockets stay open, nothing answers."""
        if self._proc is not None and self.running:
            self._signal_group(self._proc, signal.SIGSTOP)
            self._paused = True

    def resume(self) -> None:
        if self._proc is not None and self._paused:
            self._signal_group(self._proc, signal.SIGCONT)
            self._paused = False

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- databases

    def url(self, database: str | None = None) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database or self.database}"

    def create_database(self, name: str, *, template: str | None = None, exist_ok: bool = False) -> str:
        """CREATE DATABASE (optionally from a template) and return its URL."""
        for ident in (name, template):
            if ident is not None and not _IDENT.match(ident):
                raise ValueError(f"{ident!r} is not a plain lower-case identifier")
        if exist_ok and self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip() == "1":
            return self.url(name)
        sql = f'CREATE DATABASE "{name}"'
        if template is not None:
            sql += f' TEMPLATE "{template}" STRATEGY FILE_COPY'
        self.psql(sql)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        if not _IDENT.match(name):
            raise ValueError(f"{name!r} is not a plain lower-case identifier")
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def psql(self, sql: str, *, database: str = "postgres", timeout: float = 60.0) -> str:
        """Run one SQL command through psql (no driver needed in sync code); returns unaligned output."""
        if self.port is None:
            raise RuntimeError("server not started")
        cmd = [str(self._bindir / "psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"]
        cmd += ["-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({sql!r}): {result.stderr.strip()}")
        return result.stdout

    # ----------------------------------------------------------------- internals

    def _chown(self, path: Path) -> None:
        if self._account is not None:
            os.chown(path, *self._account)

    def _initdb(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            if self._account is not None and self.data_dir.stat().st_uid != self._account[0]:
                for root, dirs, files in os.walk(self.data_dir):
                    for entry in (root, *(os.path.join(root, n) for n in dirs + files)):
                        os.chown(entry, *self._account)
            return
        if self._owned_base is not None:
            self._chown(self._owned_base)
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._chown(self.data_dir)
        cmd = [str(self._bindir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust"]
        cmd += ["-E", "UTF8", "--locale=C", "--no-instructions"]
        if self._settings.get("fsync") == "off":
            cmd.append("--no-sync")
        as_user = self._as_user()
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, **as_user)
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed in {self.data_dir} (the server account must be able to reach it): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )

    def _as_user(self) -> dict[str, Any]:
        if self._account is None:
            return {}
        uid, gid = self._account
        return {"user": uid, "group": gid, "extra_groups": []}

    def _spawn(self) -> None:
        assert self.port is not None
        socket_dir = str(self.data_dir) if len(str(self.data_dir)) <= _MAX_SOCKET_DIR else ""
        cmd = [str(self._bindir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        settings = {"listen_addresses": "127.0.0.1", "unix_socket_directories": socket_dir, **self._settings}
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        main_thread = threading.current_thread() is threading.main_thread()
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # PDEATHSIG fires when the spawning *thread* exits, so only ask for it from the main thread.
                preexec_fn=_die_with_parent if main_thread else None,
                **self._as_user(),
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Wait for the postmaster to report ``ready`` in postmaster.pid (no client round trips needed)."""
        assert self._proc is not None
        deadline = time.monotonic() + self._startup_timeout
        pidfile = self.data_dir / "postmaster.pid"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                raise RuntimeError(f"postgres exited at start-up: {self._log_tail()}")
            with contextlib.suppress(OSError):
                lines = pidfile.read_text().splitlines()
                ours = len(lines) >= 8 and lines[0].strip() == str(self._proc.pid)
                if ours and lines[7].strip() == "ready":
                    return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"postgres not ready after {self._startup_timeout}s: {self._log_tail()}")

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        """Signal the postmaster and its children. Postgres children call setsid(), so killpg would miss
        them; find them through /proc instead. The postmaster goes first on STOP (no new forks) and last on
        CONT (children are running again before it hands them work)."""
        children = _children(proc.pid)
        order = [*children, proc.pid] if sig == signal.SIGCONT else [proc.pid, *children]
        for pid in order:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces or parentheses, so split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(parent):
            found.append(int(entry))
    return found
